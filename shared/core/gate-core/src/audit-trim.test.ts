import { describe, expect, it } from 'vitest';
import { nextStreamId, planTrim, streamIdLess, TRIM_BATCH, type RetentionPolicy } from './audit-trim.js';

const rec = (id: string, app: string) => JSON.stringify({ id, app, hash: `h-${id}` });
const keepAll: RetentionPolicy = { maxAgeSeconds: 0, maxRecords: 0, requireExport: false };

describe('audit retention plan', () => {
  it('stream ids compare by time, then sequence; the next id is the next sequence', () => {
    expect(streamIdLess('9-5', '10-0')).toBe(true);
    expect(streamIdLess('10-2', '10-10')).toBe(true);
    expect(streamIdLess('10-0', '10-0')).toBe(false);
    expect(nextStreamId('10-9')).toBe('10-10');
  });

  it('by count: the oldest records over the limit go, and each Application keeps a base after its last one', () => {
    const plan = planTrim({ length: 4, policy: { ...keepAll, maxRecords: 1 }, now: new Date(0), exported: undefined, bases: new Map() });
    const offered = [
      plan.offer('1-0', rec('a1', 'ns/a')),
      plan.offer('2-0', rec('b1', 'ns/b')),
      plan.offer('3-0', rec('a2', 'ns/a')),
      plan.offer('4-0', rec('a3', 'ns/a')),
    ];
    expect(offered).toEqual([true, true, true, false]);
    const r = plan.result();
    expect(r.lastTrimmed).toBe('3-0');
    expect(r.taken).toBe(3);
    expect(Object.fromEntries(r.bases)).toEqual({
      'ns/a': { size: 2, hash: 'h-a2', lastId: 'a2' },
      'ns/b': { size: 1, hash: 'h-b1', lastId: 'b1' },
    });
    // a1 was ns/a's newest trimmed decision only until a2 went.
    expect(r.droppedIds).toEqual(['a1']);
  });

  it('by age: only records older than the cut go; an earlier base is continued and its kept id dropped', () => {
    const now = new Date(100_000);
    const bases = new Map([['ns/a', { size: 5, hash: 'h-old', lastId: 'old' }]]);
    const plan = planTrim({ length: 3, policy: { ...keepAll, maxAgeSeconds: 50 }, now, exported: undefined, bases });
    expect(plan.offer('40000-0', rec('a6', 'ns/a'))).toBe(true);
    expect(plan.offer('60000-0', rec('a7', 'ns/a'))).toBe(false);
    const r = plan.result();
    expect(r.bases.get('ns/a')).toEqual({ size: 6, hash: 'h-a6', lastId: 'a6' });
    expect(r.droppedIds).toEqual(['old']);
  });

  it('with export required, nothing past the export mark goes (held), and nothing when nothing was exported', () => {
    const policy = { ...keepAll, maxRecords: 1, requireExport: true };
    const marked = planTrim({ length: 3, policy, now: new Date(0), exported: '1-0', bases: new Map() });
    expect(marked.offer('1-0', rec('a1', 'ns/a'))).toBe(true);
    expect(marked.offer('2-0', rec('a2', 'ns/a'))).toBe(false);
    expect(marked.result()).toMatchObject({ lastTrimmed: '1-0', taken: 1, heldForExport: true });
    const none = planTrim({ length: 3, policy, now: new Date(0), exported: '0-0', bases: new Map() });
    expect(none.offer('1-0', rec('a1', 'ns/a'))).toBe(false);
    expect(none.result()).toMatchObject({ taken: 0, heldForExport: true });
    expect(none.result().lastTrimmed).toBeUndefined();
  });

  it('one call takes at most a batch', () => {
    const plan = planTrim({
      length: TRIM_BATCH + 5,
      policy: { ...keepAll, maxRecords: 1 },
      now: new Date(0),
      exported: undefined,
      bases: new Map(),
    });
    let taken = 0;
    for (let i = 1; plan.offer(`${i}-0`, rec(`r${i}`, 'ns/a')); i++) taken += 1;
    expect(taken).toBe(TRIM_BATCH);
  });
});
