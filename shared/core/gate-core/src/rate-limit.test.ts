import { describe, expect, it } from 'vitest';
import type { Application } from './applications.js';
import type { ApplicationStore } from './application-store.js';
import { createTokenBucket, pacedWrites, type Clock } from './rate-limit.js';

/** A fake clock: sleeping advances it, so the test reads exactly when each token was granted. */
function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

describe('token bucket (client-go style QPS/burst)', () => {
  it('grants `burst` at once, then one every 1/qps seconds, in arrival order', async () => {
    const clock = fakeClock();
    const bucket = createTokenBucket({ qps: 10, burst: 3 }, clock);
    const granted: number[] = [];
    await Promise.all(Array.from({ length: 6 }, (_, i) => bucket.take().then(() => granted.push(i * 1000 + clock.t))));
    // Indexes in order; times: three at 0, then 100 ms apart.
    expect(granted.map((g) => Math.floor(g / 1000))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(granted.map((g) => Math.round(g % 1000))).toEqual([0, 0, 0, 100, 200, 300]);
  });

  it('refills while idle, never above burst', async () => {
    const clock = fakeClock();
    const bucket = createTokenBucket({ qps: 100, burst: 2 }, clock);
    await bucket.take();
    await bucket.take();
    clock.t += 10_000;
    const t0 = clock.t;
    await bucket.take();
    await bucket.take();
    expect(clock.t).toBe(t0);
    await bucket.take();
    expect(clock.t).toBeCloseTo(t0 + 10, 5);
  });

  it('rejects a nonsensical configuration', () => {
    expect(() => createTokenBucket({ qps: 0, burst: 1 })).toThrow(RangeError);
    expect(() => createTokenBucket({ qps: 1, burst: 0 })).toThrow(RangeError);
  });

  it('paces patches only: 25 patches at qps 50 / burst 5 take ≥ 400 ms of clock time; reads are free', async () => {
    const clock = fakeClock();
    const app: Application = { metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' } };
    const calls: string[] = [];
    const base: ApplicationStore = {
      list: async () => (calls.push('list'), [app]),
      get: async () => (calls.push('get'), app),
      patch: async () => (calls.push(`patch@${clock.t}`), app),
    };
    const store = pacedWrites(base, createTokenBucket({ qps: 50, burst: 5 }, clock));
    for (let i = 0; i < 10; i++) await store.get('ns', 'a');
    expect(clock.t).toBe(0);
    await Promise.all(Array.from({ length: 25 }, () => store.patch('ns', 'a', [])));
    expect(clock.t).toBeCloseTo(400, 5);
    expect(calls.filter((c) => c.startsWith('patch'))).toHaveLength(25);
  });
});
