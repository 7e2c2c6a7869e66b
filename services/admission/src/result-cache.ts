/**
 * The verdict store, read through an in-process cache with a hard staleness bound. A review is answered from results
 * read from Redis no longer than `ttlMs` before it started, so a verdict revoked (a failed re-verification overwrites
 * the pass) stops allowing within `ttlMs` of the gate's write. Hot entries are re-read in the background once half
 * their bound has passed, so a busy webhook almost never waits for Redis; an entry past its bound is never used.
 * Fail closed: a read error is never cached and never turns into "no verdict" (the review fails, the API server
 * applies failurePolicy Fail); an empty result (no verdict yet) is not cached, so a new verdict counts at once and a
 * flood of unknown digests cannot grow the cache; the cache holds at most `maxEntries` builds.
 */
import type { StoredImageResult } from '@gitops-gate/gate-core';

export type ResultLookup = (builds: string[]) => Promise<Map<string, StoredImageResult[]>>;

export interface ResultCacheOptions {
  /** The staleness bound; 0 turns the cache off (every review reads Redis). */
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
  /** A background re-read failed (the entry then ages out at its bound). */
  onRefreshError?: (err: unknown) => void;
}

interface Entry {
  results: StoredImageResult[];
  /** When the read that produced it was sent: staleness is measured from before the read, not after it. */
  readAt: number;
  /** Last background re-read started for it: at most one per quarter bound, even while Redis fails. */
  aheadAt?: number;
}

interface InFlight {
  startedAt: number;
  results: Promise<StoredImageResult[]>;
}

export interface CachedResultLookup extends ResultLookup {
  size(): number;
}

export function createCachedResultLookup(lookup: ResultLookup, opts: ResultCacheOptions): CachedResultLookup {
  const { ttlMs, maxEntries = 10_000, now = () => Date.now() } = opts;
  const entries = new Map<string, Entry>();
  const inflight = new Map<string, InFlight>();

  const store = (build: string, results: StoredImageResult[], readAt: number) => {
    const prev = entries.get(build);
    if (prev && prev.readAt > readAt) return; // a later read already landed
    entries.delete(build); // re-inserted last: the Map's order is the eviction order
    if (results.length === 0) return;
    entries.set(build, { results, readAt });
    for (const oldest of entries.keys()) {
      if (entries.size <= maxEntries) break;
      entries.delete(oldest);
    }
  };

  /** One pipelined read for `builds`; concurrent reviews of the same builds join it instead of reading again. */
  const read = (builds: string[]): Map<string, Promise<StoredImageResult[]>> => {
    const startedAt = now();
    const all = lookup(builds).then((found) => {
      for (const b of builds) store(b, found.get(b) ?? [], startedAt);
      return found;
    });
    const out = new Map<string, Promise<StoredImageResult[]>>();
    for (const b of builds) {
      const results = all.then((found) => found.get(b) ?? []);
      const mine: InFlight = { startedAt, results };
      inflight.set(b, mine);
      const done = () => {
        if (inflight.get(b) === mine) inflight.delete(b);
      };
      // Settled either way; a rejection reaches whoever awaits `results` (never swallowed for a review).
      results.then(done, done);
      out.set(b, results);
    }
    return out;
  };

  const cached = (async (builds: string[]) => {
    if (ttlMs <= 0) return lookup(builds);
    const t = now();
    const out = new Map<string, StoredImageResult[]>();
    const waits: [string, Promise<StoredImageResult[]>][] = [];
    const missing: string[] = [];
    const ahead: string[] = [];
    for (const b of new Set(builds)) {
      const e = entries.get(b);
      if (e && t - e.readAt < ttlMs) {
        out.set(b, e.results);
        if (t - e.readAt >= ttlMs / 2 && !inflight.has(b) && (e.aheadAt === undefined || t - e.aheadAt >= ttlMs / 4)) {
          e.aheadAt = t;
          ahead.push(b);
        }
        continue;
      }
      const f = inflight.get(b);
      if (f && t - f.startedAt < ttlMs) waits.push([b, f.results]);
      else missing.push(b);
    }
    if (ahead.length > 0) Promise.all(read(ahead).values()).catch((err: unknown) => opts.onRefreshError?.(err));
    if (missing.length > 0) for (const [b, p] of read(missing)) waits.push([b, p]);
    for (const [b, p] of waits) out.set(b, await p);
    return out;
  }) as CachedResultLookup;
  cached.size = () => entries.size;
  return cached;
}
