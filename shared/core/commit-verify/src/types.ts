/**
 * Shared vocabulary of every commit-signature method (ssh, gitsign, gpg).
 *
 * A method verifier is a pure function of (signed payload, signature, trust material, time) that never throws for
 * bad input: garbage signatures become a rejection with a string code, so a worker can never crash on a commit.
 */
import { BaseError } from '@gitops-gate/contracts/errors';

export type SignatureMethod = 'ssh' | 'gitsign' | 'gpg';

/** Who signed, as far as the method can tell. Fields a method cannot know stay undefined. */
export interface Signer {
  /** ssh: the matched principal; gitsign: certificate SAN; gpg: primary user id. */
  identity: string;
  /** gitsign: OIDC issuer of the certificate. */
  issuer?: string;
  /** ssh: SHA256:... fingerprint; gpg: full v4/v6 fingerprint (lower-case hex). */
  keyFingerprint?: string;
  /** gitsign: transparency-log index of the entry that bound the signature. */
  logIndex?: string;
  /** When the signature was made, as the method proves it (gitsign: log integrated time). */
  signedAt?: string;
}

export interface MethodAccept {
  ok: true;
  method: SignatureMethod;
  signer: Signer;
  /** Human-readable facts that were checked, for the audit trail. */
  evidence: string[];
}

export interface MethodReject {
  ok: false;
  method: SignatureMethod | 'none';
  /** Stable machine-readable code, e.g. SSH_SIGNATURE_INVALID, SSH_SIGNER_NOT_ALLOWED, UNSIGNED. */
  code: string;
  /** One line, names what is wrong. */
  reason: string;
}

export type MethodResult = MethodAccept | MethodReject;

/** Codes of CommitVerifyError: bad input given to the verifiers (policies, keys, trust material), not rejections. */
export const COMMIT_VERIFY_ERROR_CODES = [
  'ALLOWED_SIGNERS_INVALID',
  'COMMIT_MALFORMED',
  'GPG_KEY_INVALID',
  'POLICY_INVALID',
  'SIGSTORE_TRUST_INVALID',
  'SIGSTORE_TRUST_UNAVAILABLE',
  'SSH_KEY_INVALID',
] as const;
export type CommitVerifyErrorCode = (typeof COMMIT_VERIFY_ERROR_CODES)[number];

export class CommitVerifyError extends BaseError<CommitVerifyErrorCode> {}
