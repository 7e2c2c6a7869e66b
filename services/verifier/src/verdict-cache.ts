/**
 * Verdicts shared by all verifier replicas through Redis, keyed by the exact commit bytes, the policy's commit rules
 * and the trust root — so a repeat (redelivery, reconcile, re-verification, another branch with the same commit) is a
 * lookup. Rejections caused by something outside the bytes (an unreachable Rekor, the verifier's configuration) or by
 * the verifier's clock (a signature "from the future") are never cached: they may turn into a verdict later without the
 * bytes changing.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isCacheableRejection, verifyCommit, type CommitPolicy, type CommitVerdict, type VerifyCommitOptions } from '@gitops-gate/commit-verify';

export interface VerdictCache {
  verify: typeof verifyCommit;
  stats(): { hits: number; misses: number };
}

export function createVerdictCache(redis: Redis, prefix: string, opts: { trustRevision: string; ttlSeconds?: number; onLookup?: (hit: boolean) => void; verify?: typeof verifyCommit }): VerdictCache {
  const ttl = opts.ttlSeconds ?? 7 * 24 * 3600;
  const inner = opts.verify ?? verifyCommit;
  let hits = 0;
  let misses = 0;
  return {
    stats: () => ({ hits, misses }),
    async verify(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions = {}): Promise<CommitVerdict> {
      if (!policy.fingerprint) return inner(raw, policy, options);
      const key = `${prefix}:verdict:${createHash('sha256').update(raw).update('\0').update(policy.fingerprint).update('\0').update(opts.trustRevision).update('\0').update(options.expectedSha ?? '').digest('hex')}`;
      const cached = await redis.get(key).catch(() => null);
      const hit = cached ? (JSON.parse(cached) as CommitVerdict) : undefined;
      // A rejection an older verifier cached but this one would not (e.g. a key type it now supports) is a miss.
      if (hit && (hit.ok || isCacheableRejection(hit.code))) {
        hits += 1;
        opts.onLookup?.(true);
        return hit;
      }
      misses += 1;
      opts.onLookup?.(false);
      const verdict = await inner(raw, policy, options);
      if (verdict.ok || isCacheableRejection(verdict.code)) {
        await redis.set(key, JSON.stringify(verdict), 'EX', ttl).catch(() => undefined);
      }
      return verdict;
    },
  };
}
