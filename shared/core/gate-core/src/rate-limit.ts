/**
 * Client-side pacing of Kubernetes API writes, the way client-go's `flowcontrol.NewTokenBucketRateLimiter(qps, burst)`
 * paces a client: a bucket of `burst` tokens refilled at `qps` per second; each write takes one token and waits for it
 * when the bucket is empty. One fan-out (a push followed by hundreds of Applications) then writes at a rate the API
 * server and its priority-and-fairness settings expect, instead of as fast as the gate can decide.
 */
import type { ApplicationStore } from './application-store.js';

export interface TokenBucket {
  /** Resolves when a token was taken (at once while the bucket holds one). Waiters are served in arrival order. */
  take(): Promise<void>;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export function createTokenBucket(opts: { qps: number; burst: number }, clock: Clock = realClock): TokenBucket {
  if (!(opts.qps > 0) || !(opts.burst >= 1))
    throw new RangeError(`token bucket needs qps > 0 and burst ≥ 1 (got ${opts.qps}/${opts.burst})`);
  let tokens = opts.burst;
  let at = clock.now();
  // A reservation chain: each caller reserves the next token time, so waiters are FIFO and none starves.
  let tail: Promise<void> = Promise.resolve();
  const refill = () => {
    const t = clock.now();
    tokens = Math.min(opts.burst, tokens + ((t - at) * opts.qps) / 1000);
    at = t;
  };
  return {
    take() {
      const turn = tail.then(async () => {
        refill();
        if (tokens < 1) {
          await clock.sleep(((1 - tokens) * 1000) / opts.qps);
          refill();
        }
        tokens -= 1;
      });
      tail = turn.catch(() => undefined);
      return turn;
    },
  };
}

/** The store with every patch (the gate's only write) paced by `bucket`; reads pass through. */
export function pacedWrites(store: ApplicationStore, bucket: TokenBucket): ApplicationStore {
  return {
    list: (ns) => store.list(ns),
    get: (ns, name) => store.get(ns, name),
    ...(store.peek ? { peek: (ns: string, name: string) => store.peek?.(ns, name) } : {}),
    async patch(ns, name, body) {
      await bucket.take();
      return store.patch(ns, name, body);
    },
  };
}
