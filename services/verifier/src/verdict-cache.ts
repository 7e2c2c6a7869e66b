/**
 * Verdicts shared by all verifier replicas through Redis, keyed by the exact commit bytes, the policy's commit rules
 * and the trust root — so a repeat (redelivery, reconcile, re-verification, another branch with the same commit) is a
 * lookup. Rejections caused by something outside the bytes (an unreachable Rekor, the verifier's configuration) or by
 * the verifier's clock (a signature "from the future") are never cached: they may turn into a verdict later without the
 * bytes changing.
 *
 * Replicas that miss at the same time coalesce: the first sets an in-flight marker (SET NX PX, owner token) under the
 * same key digest, the others poll for its verdict instead of repeating the work. The digest covers the bytes, the
 * policy's name and rules (`fingerprint`), the trust root and the expected SHA, so a changed policy or trust root is a
 * different marker and a different verdict: nothing is ever shared across them. A dead owner's marker expires and the
 * next poller takes over.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { isCacheableRejection, verifyCommit, type CommitPolicy, type CommitVerdict, type VerifyCommitOptions } from '@gitops-gate/commit-verify';

export interface VerdictCache {
  verify: typeof verifyCommit;
  stats(): { hits: number; misses: number };
  /** Verifications run here, and verdicts taken from another replica's (or call's) in-flight verification. */
  coalescing(): { verified: number; coalesced: number };
}

export interface VerdictCacheOptions {
  trustRevision: string;
  ttlSeconds?: number;
  onLookup?: (hit: boolean) => void;
  verify?: typeof verifyCommit;
  /** How long an in-flight marker lives: a dead owner holds the others back at most this long (default 10 s). */
  inflightMs?: number;
  /** How long a caller waits for another's verdict before verifying itself (default 30 s). */
  maxWaitMs?: number;
}

// One round trip per poll: the verdict if there is one; else the marker, taken when free.
const POLL = `
local v = redis.call('GET', KEYS[1])
if v then return {'hit', v} end
local m = redis.call('GET', KEYS[2])
if not m then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {'own', ''}
end
return {'wait', m}`;
// The owner's release: a verdict that is not cached is handed to the waiters for a moment ('v:' + JSON); else DEL.
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) else redis.call('DEL', KEYS[1]) end
return 1`;

export function createVerdictCache(redis: Redis, prefix: string, opts: VerdictCacheOptions): VerdictCache {
  const ttl = opts.ttlSeconds ?? 7 * 24 * 3600;
  const inner = opts.verify ?? verifyCommit;
  const inflightMs = opts.inflightMs ?? 10_000;
  const maxWaitMs = opts.maxWaitMs ?? 30_000;
  let hits = 0;
  let misses = 0;
  let verified = 0;
  let coalesced = 0;

  const usable = (v: CommitVerdict | undefined): v is CommitVerdict => v !== undefined && (v.ok || isCacheableRejection(v.code));
  const parse = (s: string | null | undefined): CommitVerdict | undefined => (s ? (JSON.parse(s) as CommitVerdict) : undefined);

  async function run(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions, key: string): Promise<CommitVerdict> {
    verified += 1;
    const verdict = await inner(raw, policy, options);
    if (usable(verdict)) await redis.set(key, JSON.stringify(verdict), 'EX', ttl).catch(() => undefined);
    return verdict;
  }

  /** Verifies once across replicas: owner of the marker, or a waiter for the owner's verdict. */
  async function coalesce(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions, key: string, marker: string): Promise<CommitVerdict> {
    const token = `o:${randomUUID()}`;
    const deadline = Date.now() + maxWaitMs;
    let sawOwner = false;
    for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
      const polled = (await redis.eval(POLL, 2, key, marker, token, String(inflightMs)).catch(() => null)) as [string, string] | null;
      // Redis unreachable, or waited long enough: verify here (correct, only not shared).
      if (!polled || Date.now() > deadline) return run(raw, policy, options, key);
      const [state, value] = polled;
      const cached = state === 'hit' ? parse(value) : undefined;
      if (usable(cached)) {
        coalesced += 1;
        return cached;
      }
      // A stored verdict this verifier would not reuse (see `usable`): verified here, and overwritten.
      if (state === 'hit') return run(raw, policy, options, key);
      if (state === 'own') {
        let handOver = '';
        try {
          const verdict = await run(raw, policy, options, key);
          // Not cacheable (Rekor down, clock): only the callers already waiting on this attempt may take it.
          if (!usable(verdict)) handOver = `v:${JSON.stringify(verdict)}`;
          return verdict;
        } finally {
          await redis.eval(RELEASE, 1, marker, token, handOver, '2000').catch(() => undefined);
        }
      }
      if (state === 'wait' && value.startsWith('v:')) {
        // A finished attempt's uncached verdict: as fresh as ours only if it was running when we came.
        if (!sawOwner) return run(raw, policy, options, key);
        coalesced += 1;
        return JSON.parse(value.slice(2)) as CommitVerdict;
      }
      sawOwner = true;
      await sleep(delay);
    }
  }

  return {
    stats: () => ({ hits, misses }),
    coalescing: () => ({ verified, coalesced }),
    async verify(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions = {}): Promise<CommitVerdict> {
      if (!policy.fingerprint) {
        verified += 1;
        return inner(raw, policy, options);
      }
      const digest = createHash('sha256').update(raw).update('\0').update(policy.fingerprint).update('\0').update(opts.trustRevision).update('\0').update(options.expectedSha ?? '').digest('hex');
      const key = `${prefix}:verdict:${digest}`;
      const hit = parse(await redis.get(key).catch(() => null));
      // A rejection an older verifier cached but this one would not (e.g. a key type it now supports) is a miss.
      if (usable(hit)) {
        hits += 1;
        opts.onLookup?.(true);
        return hit;
      }
      misses += 1;
      opts.onLookup?.(false);
      return coalesce(raw, policy, options, key, `${prefix}:verdict-inflight:${digest}`);
    },
  };
}
