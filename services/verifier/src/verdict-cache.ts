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
import {
  isCacheableRejection,
  verifyCommit,
  type CommitPolicy,
  type CommitVerdict,
  type VerifyCommitOptions,
} from '@gitops-gate/commit-verify';

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

// One round trip per lookup and per poll: the verdict if there is one; else the marker, taken when free.
const POLL = `
local v = redis.call('GET', KEYS[1])
if v then return {'hit', v} end
local m = redis.call('GET', KEYS[2])
if not m then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {'own', ''}
end
return {'wait', m}`;
// The owner's finish, one round trip: the verdict stored when cacheable; the marker deleted, or, for a verdict that
// is not cached, handed to the waiters for a moment ('v:' + JSON). A marker no longer ours is left alone.
const FINISH = `
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) else redis.call('DEL', KEYS[2]) end
return 1`;

/** EVALSHA, loading the script on NOSCRIPT (a restarted Redis), without registering commands on a shared client. */
function script(body: string): (redis: Redis, keys: string[], args: string[]) => Promise<unknown> {
  const sha = createHash('sha1').update(body).digest('hex');
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return redis.eval(body, keys.length, ...keys, ...args);
    }
  };
}
const poll = script(POLL);
const finish = script(FINISH);

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

  /** Verifies here; the verdict is stored (when cacheable) by the caller. */
  async function run(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions): Promise<CommitVerdict> {
    verified += 1;
    return inner(raw, policy, options);
  }
  async function runAndStore(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions, key: string): Promise<CommitVerdict> {
    const verdict = await run(raw, policy, options);
    if (usable(verdict)) await redis.set(key, JSON.stringify(verdict), 'EX', ttl).catch(() => undefined);
    return verdict;
  }

  /** The owner of the marker: verifies, then stores the verdict and releases the marker in one round trip. */
  async function own(
    raw: Uint8Array,
    policy: CommitPolicy,
    options: VerifyCommitOptions,
    key: string,
    marker: string,
    token: string,
  ): Promise<CommitVerdict> {
    let verdict: CommitVerdict | undefined;
    try {
      verdict = await run(raw, policy, options);
      return verdict;
    } finally {
      const store = verdict && usable(verdict) ? JSON.stringify(verdict) : '';
      // Not cacheable (Rekor down, clock): only the callers already waiting on this attempt may take it.
      const handOver = verdict && !store ? `v:${JSON.stringify(verdict)}` : '';
      await finish(redis, [key, marker], [token, store, String(ttl), handOver, '2000']).catch(() => undefined);
    }
  }

  /** Waits for the owner's verdict (polling, bounded), or takes the marker over when it is gone. */
  async function coalesce(
    raw: Uint8Array,
    policy: CommitPolicy,
    options: VerifyCommitOptions,
    key: string,
    marker: string,
    token: string,
    first: [string, string],
  ): Promise<CommitVerdict> {
    const deadline = Date.now() + maxWaitMs;
    let sawOwner = false;
    let polled: [string, string] | null = first;
    // Polls back off from 2 ms to 25 ms: a signature check takes 0.1–2 ms, a Rekor lookup tens.
    for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
      // Redis unreachable, or waited long enough: verify here (correct, only not shared).
      if (!polled || Date.now() > deadline) return runAndStore(raw, policy, options, key);
      const [state, value] = polled;
      const cached = state === 'hit' ? parse(value) : undefined;
      if (usable(cached)) {
        coalesced += 1;
        return cached;
      }
      // A stored verdict this verifier would not reuse (see `usable`): verified here, and overwritten.
      if (state === 'hit') return runAndStore(raw, policy, options, key);
      if (state === 'own') return own(raw, policy, options, key, marker, token);
      if (value.startsWith('v:')) {
        // A finished attempt's uncached verdict: as fresh as ours only if it was running when we came.
        if (!sawOwner) return run(raw, policy, options);
        coalesced += 1;
        return JSON.parse(value.slice(2)) as CommitVerdict;
      }
      sawOwner = true;
      await sleep(delay);
      polled = (await poll(redis, [key, marker], [token, String(inflightMs)]).catch(() => null)) as [string, string] | null;
    }
  }

  return {
    stats: () => ({ hits, misses }),
    coalescing: () => ({ verified, coalesced }),
    async verify(raw: Uint8Array, policy: CommitPolicy, options: VerifyCommitOptions = {}): Promise<CommitVerdict> {
      if (!policy.fingerprint) return run(raw, policy, options);
      const digest = createHash('sha256')
        .update(raw)
        .update('\0')
        .update(policy.fingerprint)
        .update('\0')
        .update(opts.trustRevision)
        .update('\0')
        .update(options.expectedSha ?? '')
        .digest('hex');
      const key = `${prefix}:verdict:${digest}`;
      const marker = `${prefix}:verdict-inflight:${digest}`;
      // A plain GET first: a hit (the common case) costs what it did before coalescing; a Lua call is several times
      // slower per lookup in Redis.
      const hit = parse(await redis.get(key).catch(() => null));
      // A rejection an older verifier cached but this one would not (e.g. a key type it now supports) is a miss.
      if (usable(hit)) {
        hits += 1;
        opts.onLookup?.(true);
        return hit;
      }
      misses += 1;
      opts.onLookup?.(false);
      const token = `o:${randomUUID()}`;
      // On a miss: the verdict again (it may have landed since) and, when free, the in-flight marker, in one call.
      const polled = (await poll(redis, [key, marker], [token, String(inflightMs)]).catch(() => null)) as [string, string] | null;
      // Redis unreachable: verify here (fail safe: a verdict of our own, never a guess).
      if (!polled) return runAndStore(raw, policy, options, key);
      return coalesce(raw, policy, options, key, marker, token, polled);
    },
  };
}
