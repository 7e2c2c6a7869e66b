/**
 * One entry point for "is this commit signed by someone the policy trusts?": checks that the bytes are the commit the
 * caller asked about, parses it, picks the method by the signature's armor, and runs only methods the policy allows.
 * Trust material (Sigstore root, Rekor client) is built once by the caller and passed in, so the same code serves the
 * worker, the CLI and the tests.
 */
import { createHash } from 'node:crypto';
import { detectMethod, parseCommit } from './commit.js';
import type { BundleTrust } from '@gitops-gate/bundle-verify';
import { verifyGitsignCommitSignature, type GitsignIdentityRule, type RekorLookup } from './gitsign/index.js';
import { verifyGpgCommitSignature, type GpgKeyring } from './gpg/index.js';
import { verifySshCommitSignature, type AllowedSigner, type SshRevocationList } from './ssh/index.js';
import { CommitVerifyError, type MethodResult } from './types.js';

export interface GpgKeyRule {
  fingerprint: string;
  validFrom?: Date;
  validUntil?: Date;
  revoked: boolean;
}

/**
 * The commit-signature rules of one policy, compiled (keys parsed, patterns ready): what `verifyCommit` needs. The
 * policy package (@gitops-gate/policy) builds them from a GatePolicy; this library never reads a policy document.
 */
export interface CommitPolicy {
  name: string;
  /** sha256 over the policy's commit rules: equal fingerprints give equal verdicts (verdict cache key). */
  fingerprint?: string;
  ssh?: {
    allowedSigners: AllowedSigner[];
    /** Revocation lists: the policy's own and any the caller adds (the CLI's --revoked-keys). */
    revoked?: SshRevocationList[];
    requireUserPresence?: boolean;
    requireUserVerification?: boolean;
  };
  gitsign?: { identities: GitsignIdentityRule[] };
  gpg?: { keyring: GpgKeyring; keys: GpgKeyRule[] };
}

export type CommitVerdict = MethodResult & { policy: string; sha: string };

export interface VerifyEnvironment {
  /** Sigstore trusted root for gitsign; without it gitsign commits are rejected. */
  trust?: BundleTrust;
  /** Rekor lookups for gitsign signatures without an embedded log entry; without it they are rejected. */
  rekor?: RekorLookup;
}

export interface VerifyCommitOptions {
  /** When given, the raw bytes must hash to this object id (sha1 or sha256 repos): no verdict for the wrong commit. */
  expectedSha?: string;
  env?: VerifyEnvironment;
}

/** Git object id of raw commit bytes. */
export function gitCommitId(raw: Uint8Array, algorithm: 'sha1' | 'sha256' = 'sha1'): string {
  return createHash(algorithm).update(`commit ${raw.byteLength}\0`).update(raw).digest('hex');
}

export function rejectCommit(policy: string, sha: string, method: MethodResult['method'], code: string, reason: string): CommitVerdict {
  return { ok: false, method, code, reason, policy, sha };
}

function within(at: Date, from?: Date, until?: Date): boolean {
  return (!from || at >= from) && (!until || at <= until);
}

export async function verifyCommit(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions = {}): Promise<CommitVerdict> {
  const expected = options.expectedSha;
  const sha = gitCommitId(raw, expected?.length === 64 ? 'sha256' : 'sha1');
  if (expected !== undefined && expected !== sha) {
    return rejectCommit(policy.name, sha, 'none', 'COMMIT_ID_MISMATCH', `commit bytes hash to ${sha}, not ${expected}`);
  }
  let parsed;
  try {
    parsed = parseCommit(raw);
  } catch (err) {
    const code = err instanceof CommitVerifyError ? err.code : 'COMMIT_MALFORMED';
    return rejectCommit(policy.name, sha, 'none', code, (err as Error).message);
  }
  if (parsed.signature === null) return rejectCommit(policy.name, sha, 'none', 'UNSIGNED', 'commit is not signed');
  const method = detectMethod(parsed.signature);
  const notAllowed = (m: 'ssh' | 'gitsign' | 'gpg') =>
    rejectCommit(policy.name, sha, m, 'METHOD_NOT_ALLOWED', `policy ${policy.name} does not allow ${m} signatures`);
  let result: MethodResult;
  switch (method) {
    case 'ssh':
      if (!policy.ssh) return notAllowed('ssh');
      result = verifySshCommitSignature({
        payload: parsed.payload,
        signature: parsed.signature,
        allowedSigners: policy.ssh.allowedSigners,
        // The committer must be the principal the key is listed for (stricter than git, which accepts a key
        // listed for anyone): a key trusted for bob does not vouch for a commit that claims to be alice's.
        principal: parsed.committer.email,
        // As git does (-Overify-time): key validity windows are checked at the commit's own committer time.
        at: new Date(parsed.committer.timestamp * 1000),
        ...(policy.ssh.revoked ? { revoked: policy.ssh.revoked } : {}),
        ...(policy.ssh.requireUserPresence ? { requireUserPresence: true } : {}),
        ...(policy.ssh.requireUserVerification ? { requireUserVerification: true } : {}),
      });
      break;
    case 'gitsign':
      if (!policy.gitsign) return notAllowed('gitsign');
      if (!options.env?.trust)
        return rejectCommit(policy.name, sha, 'gitsign', 'GITSIGN_NO_TRUST_ROOT', 'no Sigstore trusted root configured');
      result = await verifyGitsignCommitSignature({
        payload: parsed.payload,
        signature: parsed.signature,
        trust: options.env.trust,
        identities: policy.gitsign.identities,
        rekor: options.env.rekor,
      });
      break;
    case 'gpg': {
      if (!policy.gpg) return notAllowed('gpg');
      const usable = policy.gpg.keys.filter((k) => !k.revoked);
      result = await verifyGpgCommitSignature({
        payload: parsed.payload,
        signature: parsed.signature,
        keyring: policy.gpg.keyring,
        allowedFingerprints: usable.map((k) => k.fingerprint),
      });
      if (result.ok) {
        const signerFpr = result.signer.keyFingerprint;
        const rule = usable.find((k) => k.fingerprint === signerFpr);
        const at = result.signer.signedAt ? new Date(result.signer.signedAt) : undefined;
        // Rotation: a retired key keeps verifying what it signed inside its window. The signature time is the
        // signer's own claim (OpenPGP has no log), so revocation, not expiry, is the answer to a stolen key.
        if (!rule || !at || !within(at, rule.validFrom, rule.validUntil)) {
          return rejectCommit(
            policy.name,
            sha,
            'gpg',
            'GPG_KEY_OUTSIDE_POLICY_WINDOW',
            `key ${result.signer.keyFingerprint} is not valid for signatures made at ${result.signer.signedAt ?? 'an unknown time'} under policy ${policy.name}`,
          );
        }
      } else if (result.code === 'GPG_SIGNER_NOT_ALLOWED' && policy.gpg.keys.some((k) => k.revoked)) {
        result = { ...result, reason: `${result.reason} (revoked keys in policy ${policy.name} verify nothing)` };
      }
      break;
    }
    default:
      return rejectCommit(policy.name, sha, 'none', 'SIGNATURE_UNKNOWN_FORMAT', 'signature is neither SSH, gitsign (CMS) nor OpenPGP');
  }
  return { ...result, policy: policy.name, sha };
}
