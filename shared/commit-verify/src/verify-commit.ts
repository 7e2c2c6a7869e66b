/**
 * One entry point for "is this commit signed by someone the policy trusts?": parses the raw commit, checks that the
 * bytes are the commit the caller asked about, picks the method by the signature's armor, and runs only methods
 * the policy allows. Everything a method needs is passed in, so the same code serves the worker and the CLI.
 */
import { createHash } from 'node:crypto';
import { detectMethod, parseCommit } from './commit.js';
import { verifySshCommitSignature, type AllowedSigner } from './ssh/index.js';
import { CommitVerifyError, type MethodResult } from './types.js';

export interface CommitPolicy {
  /** Shown in every verdict: which policy decided. */
  name: string;
  ssh?: { allowedSigners: AllowedSigner[] };
}

export type CommitVerdict = MethodResult & { policy: string; sha: string };

export interface VerifyCommitOptions {
  /** When given, the raw bytes must hash to this object id (sha1 or sha256 repos): no verdict for the wrong commit. */
  expectedSha?: string;
}

export function commitObjectId(raw: Uint8Array, algorithm: 'sha1' | 'sha256' = 'sha1'): string {
  return createHash(algorithm).update(`commit ${raw.byteLength}\0`).update(raw).digest('hex');
}

function reject(policy: string, sha: string, method: MethodResult['method'], code: string, reason: string): CommitVerdict {
  return { ok: false, method, code, reason, policy, sha };
}

export async function verifyCommit(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions = {}): Promise<CommitVerdict> {
  const expected = options.expectedSha;
  const sha = commitObjectId(raw, expected?.length === 64 ? 'sha256' : 'sha1');
  if (expected !== undefined && expected !== sha) {
    return reject(policy.name, sha, 'none', 'COMMIT_ID_MISMATCH', `commit bytes hash to ${sha}, not ${expected}`);
  }
  let parsed;
  try {
    parsed = parseCommit(raw);
  } catch (err) {
    const code = err instanceof CommitVerifyError ? err.code : 'COMMIT_MALFORMED';
    return reject(policy.name, sha, 'none', code, (err as Error).message);
  }
  if (parsed.signature === null) return reject(policy.name, sha, 'none', 'UNSIGNED', 'commit is not signed');
  const method = detectMethod(parsed.signature);
  switch (method) {
    case 'ssh': {
      if (!policy.ssh) return reject(policy.name, sha, 'ssh', 'METHOD_NOT_ALLOWED', `policy ${policy.name} does not allow SSH signatures`);
      const r = verifySshCommitSignature({
        payload: parsed.payload,
        signature: parsed.signature,
        allowedSigners: policy.ssh.allowedSigners,
        principal: parsed.committer.email,
        // As git does (-Overify-time): key validity windows are checked at the commit's own committer time.
        at: new Date(parsed.committer.timestamp * 1000),
      });
      return { ...r, policy: policy.name, sha };
    }
    case 'gitsign':
    case 'gpg':
      return reject(policy.name, sha, method, 'METHOD_NOT_ALLOWED', `policy ${policy.name} does not allow ${method} signatures`);
    default:
      return reject(policy.name, sha, 'none', 'SIGNATURE_UNKNOWN_FORMAT', 'signature is neither SSH, gitsign (CMS) nor OpenPGP');
  }
}
