/**
 * The verdict cache's bound (fake clock, a stand-in store): what is cached, for how long, and that it fails closed.
 */
import { describe, expect, it } from 'vitest';
import type { StoredImageResult } from '@gitops-gate/gate-core';
import { createCachedResultLookup } from './result-cache.js';

const BUILD = 'ghcr.io/org/shop@sha256:' + '1'.repeat(64);
const OTHER = 'ghcr.io/org/shop@sha256:' + '2'.repeat(64);
const result = (ok: boolean): StoredImageResult =>
  ({
    name: 'shop/shop',
    uid: 'u',
    generation: 1,
    ok,
    code: ok ? 'IMAGE_VERIFIED' : 'IMAGE_SIGNATURE_INVALID',
  }) as unknown as StoredImageResult;

/** A store whose content the test changes, counting round trips; `fail` makes reads throw. */
function fakeStore() {
  const data = new Map<string, StoredImageResult[]>();
  const s = {
    data,
    reads: 0,
    fail: false,
    lookup: async (builds: string[]) => {
      s.reads += 1;
      await Promise.resolve();
      if (s.fail) throw new Error('redis down');
      return new Map(builds.map((b) => [b, data.get(b) ?? []]));
    },
  };
  return s;
}
const flush = () => new Promise((r) => setImmediate(r));

describe('verdict cache', () => {
  it('answers repeated reviews from memory within the bound (one round trip)', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    let t = 0;
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 1000, now: () => t });
    for (let i = 0; i < 5; i++) expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(true);
    t = 400;
    await lookup([BUILD]);
    expect(store.reads).toBe(1);
  });

  it('concurrent reviews of an uncached build share one read', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 1000, now: () => 0 });
    await Promise.all([lookup([BUILD]), lookup([BUILD, BUILD]), lookup([BUILD])]);
    expect(store.reads).toBe(1);
  });

  it('attacker: a verdict revoked after a cached allow no longer allows once the bound has passed', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    let t = 0;
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 1000, now: () => t });
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(true);
    store.data.set(BUILD, [result(false)]); // the gate stores a failed re-verification (rejections win)
    t = 1000; // exactly the bound: the cached pass is not used any more
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(false);
  });

  it('attacker: staleness counts from before the read — a slow read does not stretch the bound', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    let t = 0;
    const slow = async (builds: string[]) => {
      const r = await store.lookup(builds);
      t = 900; // the reply arrives 900 ms after the read was sent
      return r;
    };
    const lookup = createCachedResultLookup(slow, { ttlMs: 1000, now: () => t });
    await lookup([BUILD]);
    store.data.set(BUILD, [result(false)]);
    t = 1000;
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(false);
  });

  it('re-reads hot entries in the background after half the bound, so a revocation lands without a wait', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    let t = 0;
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 1000, now: () => t });
    await lookup([BUILD]);
    store.data.set(BUILD, [result(false)]);
    t = 600;
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(true); // within the bound, answered from memory…
    await flush();
    expect(store.reads).toBe(2); // …while it was re-read
    t = 700;
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(false);
  });

  it('fail closed: a read error is thrown (never "no verdict"), and a cached pass is not used past its bound', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    let t = 0;
    const errors: unknown[] = [];
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 1000, now: () => t, onRefreshError: (e) => errors.push(e) });
    await lookup([BUILD]);
    store.fail = true;
    t = 600; // background re-read fails: logged, the entry keeps its age
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(true);
    await flush();
    expect(errors).toHaveLength(1);
    t = 700; // not one re-read per review while Redis is down: at most one per quarter bound
    await lookup([BUILD]);
    await flush();
    expect(errors).toHaveLength(1);
    t = 1000;
    await expect(lookup([BUILD])).rejects.toThrow('redis down');
    await expect(lookup([OTHER])).rejects.toThrow('redis down');
  });

  it('does not cache "no verdict" (a new verdict counts at once) and keeps at most maxEntries builds', async () => {
    const store = fakeStore();
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 1000, maxEntries: 1, now: () => 0 });
    expect((await lookup([BUILD])).get(BUILD)).toEqual([]);
    store.data.set(BUILD, [result(true)]);
    expect((await lookup([BUILD])).get(BUILD)?.[0]?.ok).toBe(true);
    store.data.set(OTHER, [result(true)]);
    await lookup([OTHER]);
    expect(lookup.size()).toBe(1);
    const reads = store.reads;
    await lookup([BUILD]); // evicted: read again
    expect(store.reads).toBe(reads + 1);
  });

  it('ttlMs 0 reads the store on every review', async () => {
    const store = fakeStore();
    store.data.set(BUILD, [result(true)]);
    const lookup = createCachedResultLookup(store.lookup, { ttlMs: 0 });
    await lookup([BUILD]);
    await lookup([BUILD]);
    expect(store.reads).toBe(2);
  });
});
