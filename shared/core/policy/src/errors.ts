import { BaseError } from '@gitops-gate/contracts/errors';

/** Every code a policy package function throws. */
export const POLICY_ERROR_CODES = ['POLICY_INVALID'] as const;
export type PolicyErrorCode = (typeof POLICY_ERROR_CODES)[number];

/** A policy that does not parse or compile; the message names the field that is wrong. */
export class PolicyError extends BaseError<PolicyErrorCode> {}
