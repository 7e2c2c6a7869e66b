/**
 * The SSH verifier's rejection: a stable code from SSH_REJECT_CODES and a one-line reason. Thrown inside the
 * verifier and turned into a MethodReject at its boundary; it never escapes the public API.
 */
import { BaseError } from '@gitops-gate/contracts/errors';

/** Reject codes the SSH verifier returns (stable, for policies and dashboards). */
export const SSH_REJECT_CODES = [
  'SSH_INPUT_INVALID',
  'SSH_SIGNATURE_MALFORMED',
  'SSH_SIGNATURE_VERSION_UNSUPPORTED',
  'SSH_NAMESPACE_MISMATCH',
  'SSH_HASH_ALGORITHM_UNSUPPORTED',
  'SSH_KEY_TYPE_UNSUPPORTED',
  'SSH_CERT_UNSUPPORTED',
  'SSH_KEY_TOO_WEAK',
  'SSH_RSA_SHA1_REJECTED',
  'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED',
  'SSH_SIGNATURE_INVALID',
  'SSH_SIGNER_NOT_ALLOWED',
  'SSH_SIGNER_NAMESPACE_NOT_ALLOWED',
  'SSH_KEY_NOT_YET_VALID',
  'SSH_KEY_EXPIRED',
  'SSH_KEY_REVOKED',
  'SSH_SK_USER_PRESENCE_REQUIRED',
  'SSH_SK_USER_VERIFICATION_REQUIRED',
  'SSH_CERT_SIGNATURE_INVALID',
  'SSH_CERT_NOT_USER',
  'SSH_CERT_NOT_YET_VALID',
  'SSH_CERT_EXPIRED',
  'SSH_CERT_PRINCIPAL_MISMATCH',
  'SSH_CERT_CRITICAL_OPTION_UNSUPPORTED',
  'SSH_VERIFY_ERROR',
] as const;
export type SshRejectCode = (typeof SSH_REJECT_CODES)[number];

export class SshReject extends BaseError<SshRejectCode> {
  get reason(): string {
    return this.message;
  }
}

export function reject(code: SshRejectCode, reason: string): never {
  throw new SshReject(code, reason);
}
