/**
 * One entry point for "is this commit signed by someone the policy trusts?": checks that the bytes are the commit the
 * caller asked about, parses it, picks the method by the signature's armor, and runs only methods the policy allows.
 * Trust material (Sigstore root, Rekor client) is built once by the caller and passed in, so the same code serves the
 * worker, the CLI and the tests.
 */
import { createHash } from 'node:crypto';
import { detectMethod, parseCommit } from './commit.js';
import { verifyGitsignCommitSignature, type RekorLookup } from './gitsign/index.js';
import { verifyGpgCommitSignature } from './gpg/index.js';
import type { CommitPolicy, CompiledPolicy } from './policy.js';
import type { BundleTrust } from '@gitops-gate/bundle-verify';
import { verifySshCommitSignature } from './ssh/index.js';
import { CommitVerifyError, type MethodResult } from './types.js';

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

function reject(policy: string, sha: string, method: MethodResult['method'], code: string, reason: string): CommitVerdict {
  return { ok: false, method, code, reason, policy, sha };
}

function within(at: Date, from?: Date, until?: Date): boolean {
  return (!from || at >= from) && (!until || at <= until);
}

export async function verifyCommit(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions = {}): Promise<CommitVerdict> {
  const expected = options.expectedSha;
  const sha = gitCommitId(raw, expected?.length === 64 ? 'sha256' : 'sha1');
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
  const notAllowed = (m: 'ssh' | 'gitsign' | 'gpg') =>
    reject(policy.name, sha, m, 'METHOD_NOT_ALLOWED', `policy ${policy.name} does not allow ${m} signatures`);
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
      if (!options.env?.trust) return reject(policy.name, sha, 'gitsign', 'GITSIGN_NO_TRUST_ROOT', 'no Sigstore trusted root configured');
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
          return reject(policy.name, sha, 'gpg', 'GPG_KEY_OUTSIDE_POLICY_WINDOW', `key ${result.signer.keyFingerprint} is not valid for signatures made at ${result.signer.signedAt ?? 'an unknown time'} under policy ${policy.name}`);
        }
      } else if (result.code === 'GPG_SIGNER_NOT_ALLOWED' && policy.gpg.keys.some((k) => k.revoked)) {
        result = { ...result, reason: `${result.reason} (revoked keys in policy ${policy.name} verify nothing)` };
      }
      break;
    }
    default:
      return reject(policy.name, sha, 'none', 'SIGNATURE_UNKNOWN_FORMAT', 'signature is neither SSH, gitsign (CMS) nor OpenPGP');
  }
  return { ...result, policy: policy.name, sha };
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

/**
 * Policies that govern (repository, branch): repository compared normalised (`*` = every repository), branches
 * exact or `*` globs.
 */
export function policiesFor(policies: CompiledPolicy[], repoUrl: string, branch: string, normalize: (u: string) => string): CompiledPolicy[] {
  const want = normalize(repoUrl);
  return policies.filter((p) => (p.repository === '*' || normalize(p.repository) === want) && p.branches.some((b) => globToRegExp(b).test(branch)));
}

export interface PolicyResult {
  policy: string;
  mode: 'Enforce' | 'Audit';
  /** Identity of the policy object (the gate counts a result only while this generation of it is live). */
  scope: CompiledPolicy['scope'];
  namespace?: string;
  uid?: string;
  generation?: number;
  selector: CompiledPolicy['selector'];
  verdict: CommitVerdict;
}

export interface PolicyEvaluation {
  /** The verdict that decides: first failing Enforce policy, else the first passing one. */
  verdict: CommitVerdict;
  results: PolicyResult[];
}

/**
 * Every Enforce policy that governs the branch must pass; Audit policies are evaluated and reported only.
 * No governing policy at all is a rejection (default deny): an unconfigured repository is never trusted.
 */
export async function evaluatePolicies(
  raw: Uint8Array,
  governing: CompiledPolicy[],
  options: VerifyCommitOptions = {},
  verify: typeof verifyCommit = verifyCommit,
): Promise<PolicyEvaluation> {
  const sha = gitCommitId(raw, options.expectedSha?.length === 64 ? 'sha256' : 'sha1');
  if (governing.length === 0) {
    return { verdict: reject('-', sha, 'none', 'NO_POLICY', 'no policy governs this repository and branch (default deny)'), results: [] };
  }
  const results: PolicyResult[] = [];
  for (const p of governing) {
    results.push({ policy: p.name, mode: p.mode, scope: p.scope, namespace: p.namespace, uid: p.uid, generation: p.generation, selector: p.selector, verdict: await verify(raw, p.commit, options) });
  }
  const enforce = results.filter((r) => r.mode === 'Enforce');
  const failing = enforce.find((r) => !r.verdict.ok);
  if (failing) return { verdict: failing.verdict, results };
  if (enforce.length === 0) {
    const v = results[0]!.verdict;
    return {
      verdict: reject(results.map((r) => r.policy).join(','), sha, v.method, 'AUDIT_ONLY', `only Audit policies govern this branch (would have been ${v.ok ? 'verified' : `rejected: ${v.code}`})`),
      results,
    };
  }
  return { verdict: enforce[0]!.verdict, results };
}
