/**
 * Which compiled policies govern a push (selection by repository and branch), and what they say together about one
 * commit: every Enforce policy must pass, Audit policies are reported only, no policy at all is a rejection.
 */
import { gitCommitId, rejectCommit, verifyCommit, type CommitVerdict, type VerifyCommitOptions } from '@gitops-gate/commit-verify';
import { refNameMatches } from '@gitops-gate/contracts/glob';
import type { CompiledPolicy } from './policy.js';

/**
 * Policies that govern (repository, branch): repository compared normalised (`*` = every repository), branches
 * exact or `*` globs.
 */
export function policiesFor(
  policies: CompiledPolicy[],
  repoUrl: string,
  branch: string,
  normalize: (u: string) => string,
): CompiledPolicy[] {
  const want = normalize(repoUrl);
  return policies.filter(
    (p) => (p.repository === '*' || normalize(p.repository) === want) && p.branches.some((b) => refNameMatches(b, branch)),
  );
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
    return {
      verdict: rejectCommit('-', sha, 'none', 'NO_POLICY', 'no policy governs this repository and branch (default deny)'),
      results: [],
    };
  }
  const results: PolicyResult[] = [];
  for (const p of governing) {
    results.push({
      policy: p.name,
      mode: p.mode,
      scope: p.scope,
      namespace: p.namespace,
      uid: p.uid,
      generation: p.generation,
      selector: p.selector,
      verdict: await verify(raw, p.commit, options),
    });
  }
  const enforce = results.filter((r) => r.mode === 'Enforce');
  const failing = enforce.find((r) => !r.verdict.ok);
  if (failing) return { verdict: failing.verdict, results };
  if (enforce.length === 0) {
    const v = results[0]!.verdict;
    return {
      verdict: rejectCommit(
        results.map((r) => r.policy).join(','),
        sha,
        v.method,
        'AUDIT_ONLY',
        `only Audit policies govern this branch (would have been ${v.ok ? 'verified' : `rejected: ${v.code}`})`,
      ),
      results,
    };
  }
  return { verdict: enforce[0]!.verdict, results };
}
