/** Errors the sandbox itself raises (bad options, bad seed) as opposed to API Status answers. */
import { BaseError } from '@gitops-gate/contracts/errors';

/** Every code the sandbox's own errors carry (API answers are Status objects with HTTP codes instead). */
export const SANDBOX_ERROR_CODES = [
  'INVALID_KIND',
  'INVALID_FAULT',
  'UNKNOWN_KIND',
  'INVALID_SEED',
  'LISTEN_FAILED',
  'INVALID_WATCH_TIMEOUT',
  'INVALID_OPTION',
  'INVALID_SCHEMA',
  'INVALID_CRD',
  'K8S_STATUS',
  'PATCH_MALFORMED',
  'PATCH_NOT_APPLIED',
] as const;
export type SandboxErrorCode = (typeof SANDBOX_ERROR_CODES)[number];

export class SandboxError extends BaseError<
  Exclude<SandboxErrorCode, 'INVALID_CRD' | 'K8S_STATUS' | 'PATCH_MALFORMED' | 'PATCH_NOT_APPLIED'>
> {}
