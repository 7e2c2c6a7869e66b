import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TrimResult } from '@gitops-gate/gate-core';
import { createAuditTrimmer, trimLeaseMs, type LeaseRedis } from './audit-trimmer.js';
import { capturingLogger } from './test-logs.js';

/** SET … PX … NX over one shared clock, as Redis does it for several gate replicas. */
function leaseRedis(clock: { now: number }): LeaseRedis & { holders: string[] } {
  const keys = new Map<string, { value: string; until: number }>();
  const holders: string[] = [];
  return {
    holders,
    set(key, value, _px, ms) {
      const held = keys.get(key);
      if (held && held.until > clock.now) return Promise.resolve(null);
      keys.set(key, { value, until: clock.now + ms });
      holders.push(value);
      return Promise.resolve('OK');
    },
  };
}

const retention = { maxAgeSeconds: 3600, maxRecords: 0, requireExport: false };
const result = (r: Partial<TrimResult> = {}): TrimResult => ({ trimmed: 0, apps: 0, heldForExport: false, ...r });

function replica(redis: LeaseRedis, holder: string, trim = vi.fn((_now: Date) => Promise.resolve(result())), r = retention) {
  const { logger, lines } = capturingLogger();
  return { t: createAuditTrimmer({ redis, prefix: 'p', retention: r, intervalSeconds: 10, holder, trim, logger }), trim, lines };
}

afterEach(() => vi.useRealTimers());

describe('createAuditTrimmer', () => {
  it('one replica per lease: the second skips the tick; after the lease lapses another may take it', async () => {
    const clock = { now: 0 };
    const redis = leaseRedis(clock);
    const a = replica(redis, 'a');
    const b = replica(redis, 'b');
    await a.t.runOnce();
    await b.t.runOnce();
    expect(a.trim).toHaveBeenCalledTimes(1);
    expect(b.trim).not.toHaveBeenCalled();
    clock.now += trimLeaseMs(10) - 1;
    await b.t.runOnce();
    expect(b.trim).not.toHaveBeenCalled();
    clock.now += 1;
    await b.t.runOnce();
    expect(b.trim).toHaveBeenCalledTimes(1);
    expect(redis.holders).toEqual(['a', 'b']);
  });

  it('the lease is 80 % of the interval (the next tick finds it free), never under 100 ms', () => {
    expect(trimLeaseMs(10)).toBe(8_000);
    expect(trimLeaseMs(0.05)).toBe(100);
  });

  it('retention off (no age, no count limit): no lease taken, nothing trimmed', async () => {
    const redis = leaseRedis({ now: 0 });
    const r = replica(redis, 'a', undefined, { maxAgeSeconds: 0, maxRecords: 0, requireExport: false });
    await r.t.runOnce();
    expect(redis.holders).toEqual([]);
    expect(r.trim).not.toHaveBeenCalled();
  });

  it('logs what was trimmed, and warns when records are held for export', async () => {
    const r = replica(
      leaseRedis({ now: 0 }),
      'a',
      vi.fn(() => Promise.resolve(result({ trimmed: 3, apps: 1, heldForExport: true }))),
    );
    await r.t.runOnce();
    expect(r.lines.find((l) => l.msg === 'audit records trimmed')?.trimmed).toBe(3);
    expect(r.lines.some((l) => l.msg.startsWith('audit records due for retention kept'))).toBe(true);
  });

  it('start trims at once and on every interval; a failed trim is logged and the next tick runs; stop ends it', async () => {
    vi.useFakeTimers();
    const clock = { now: 0 };
    const trim = vi.fn(() => Promise.reject(new Error('redis down')));
    const r = replica(leaseRedis(clock), 'a', trim);
    r.t.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(trim).toHaveBeenCalledTimes(1);
    clock.now += 10_000;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(trim).toHaveBeenCalledTimes(2);
    expect(r.lines.filter((l) => l.msg === 'audit trim failed')).toHaveLength(2);
    r.t.stop();
    clock.now += 50_000;
    await vi.advanceTimersByTimeAsync(50_000);
    expect(trim).toHaveBeenCalledTimes(2);
  });
});
