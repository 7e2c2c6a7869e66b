import { BaseError } from '@gitops-gate/contracts/errors';

/** Every code a bundle rejection carries (stable: metrics, the audit trail and callers switch on them). */
export const VERIFY_ERROR_CODES = [
  'ARTIFACT_DIGEST_UNSUPPORTED',
  'ARTIFACT_INVALID',
  'ARTIFACT_MISMATCH',
  'BUNDLE_INVALID',
  'BUNDLE_UNSUPPORTED',
  'BUNDLE_UNSUPPORTED_VERSION',
  'CERTIFICATE_CHAIN_INVALID',
  'CERTIFICATE_EXPIRED',
  'CERTIFICATE_INVALID',
  'CHECKPOINT_INVALID',
  'DER_INVALID',
  'DSSE_PAYLOAD_UNSUPPORTED',
  'IDENTITY_MISMATCH',
  'INCLUSION_PROOF_INVALID',
  'INTEGRATED_TIME_IN_FUTURE',
  'KEY_INVALID',
  'KEY_OUTSIDE_VALIDITY',
  'KEY_UNSUPPORTED',
  'PEM_INVALID',
  'POLICY_INVALID',
  'POLICY_MATERIAL_MISMATCH',
  'SCT_INVALID',
  'SCT_MISSING',
  'SET_INVALID',
  'SIGNATURE_INVALID',
  'STATEMENT_INVALID',
  'SUBJECT_MISMATCH',
  'TIMESTAMP_INVALID',
  'TIMESTAMP_IN_FUTURE',
  'TIMESTAMP_MISMATCH',
  'TIMESTAMP_MISSING',
  'TIMESTAMP_UNTRUSTED',
  'TLOG_BODY_MISMATCH',
  'TLOG_INCLUSION_MISSING',
  'TLOG_KEY_EXPIRED',
  'TLOG_KIND_UNSUPPORTED',
  'TLOG_MISSING',
  'TLOG_UNTRUSTED',
  'TRUSTED_ROOT_INVALID',
] as const;
export type VerifyErrorCode = (typeof VERIFY_ERROR_CODES)[number];

/** Every rejection carries a stable string code (for metrics and callers) and a one-line human reason. */
export class VerifyError extends BaseError<VerifyErrorCode> {}

export function reject(code: VerifyErrorCode, reason: string): never {
  throw new VerifyError(code, reason);
}
