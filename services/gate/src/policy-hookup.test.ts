import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AppOutcome, PolicySet, PolicyWatcher } from '@gitops-gate/gate-core';
import { createPendingReevaluation, gateReadiness, startPolicyWatch } from './policy-hookup.js';
import { capturingLogger } from './test-logs.js';

const set = (revision: string): PolicySet => ({ revision, compiled: [], objects: [{ rev: revision }], broken: [] });

function fakeWatcher(health = { synced: true, ok: true, problems: [] as string[] }): PolicyWatcher & { resyncs: number } {
  const w = {
    resyncs: 0,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    current: () => set('r0'),
    live: () => [],
    health: () => health,
    resync: () => ((w.resyncs += 1), Promise.resolve()),
  };
  return w;
}

afterEach(() => vi.useRealTimers());

describe('createPendingReevaluation', () => {
  it('nothing before a gate exists; attaching runs one pass; each trigger one more, strictly one at a time', async () => {
    const reported: AppOutcome[][] = [];
    const r = createPendingReevaluation((o) => (reported.push(o), Promise.resolve()), capturingLogger().logger);
    r.trigger();
    await r.settled();
    let running = 0;
    let overlap = false;
    const gate = {
      reevaluatePending: vi.fn(async () => {
        running += 1;
        overlap ||= running > 1;
        await new Promise((res) => setTimeout(res, 5));
        running -= 1;
        return [{ app: 'argocd/web' } as unknown as AppOutcome];
      }),
    };
    r.attach(gate);
    r.trigger();
    r.trigger();
    await r.settled();
    expect(gate.reevaluatePending).toHaveBeenCalledTimes(3);
    expect(overlap).toBe(false);
    expect(reported).toHaveLength(3);
  });

  it('a failed pass is logged and does not stop the next one', async () => {
    const { logger, lines } = capturingLogger();
    const r = createPendingReevaluation(() => Promise.resolve(), logger);
    const gate = { reevaluatePending: vi.fn().mockRejectedValueOnce(new Error('kube down')).mockResolvedValue([]) };
    r.attach(gate);
    r.trigger();
    await r.settled();
    expect(gate.reevaluatePending).toHaveBeenCalledTimes(2);
    expect(lines.filter((l) => l.msg === 'pending image waits not re-evaluated')).toHaveLength(1);
  });
});

describe('startPolicyWatch', () => {
  it('starts from the earlier snapshot; each change is published before pending waits are re-evaluated', async () => {
    const order: string[] = [];
    let onChange: ((s: PolicySet) => Promise<void>) | undefined;
    let previousSeen: object[] | undefined;
    const { stop } = await startPolicyWatch({
      readPrevious: () => Promise.resolve([{ old: true }]),
      publish: (s) => (order.push(`publish ${s.revision}`), Promise.resolve()),
      createWatcher: (opts) => ((onChange = opts.onChange), (previousSeen = opts.previous), fakeWatcher()),
      reevaluation: { trigger: () => order.push('reevaluate') },
      resyncMs: 60_000,
      logger: capturingLogger().logger,
    });
    expect(previousSeen).toEqual([{ old: true }]);
    await onChange?.(set('r1'));
    expect(order).toEqual(['publish r1', 'reevaluate']);
    stop();
  });

  it('a change whose snapshot cannot be published fails (the watcher retries it) and triggers no re-evaluation', async () => {
    let onChange: ((s: PolicySet) => Promise<void>) | undefined;
    const trigger = vi.fn();
    const { stop } = await startPolicyWatch({
      readPrevious: () => Promise.resolve([]),
      publish: () => Promise.reject(new Error('redis down')),
      createWatcher: (opts) => ((onChange = opts.onChange), fakeWatcher()),
      reevaluation: { trigger },
      resyncMs: 60_000,
      logger: capturingLogger().logger,
    });
    await expect(onChange?.(set('r1'))).rejects.toThrow('redis down');
    expect(trigger).not.toHaveBeenCalled();
    stop();
  });

  it('an unreadable earlier snapshot is logged and the watch starts from nothing; resync runs on its interval until stopped', async () => {
    vi.useFakeTimers();
    const { logger, lines } = capturingLogger();
    const w = fakeWatcher();
    let previousSeen: object[] | undefined;
    const { stop } = await startPolicyWatch({
      readPrevious: () => Promise.reject(new Error('garbage')),
      publish: () => Promise.resolve(),
      createWatcher: (opts) => ((previousSeen = opts.previous), w),
      reevaluation: { trigger: () => undefined },
      resyncMs: 60_000,
      logger,
    });
    expect(previousSeen).toEqual([]);
    expect(lines.some((l) => l.msg === 'previous policy snapshot unreadable')).toBe(true);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(w.resyncs).toBe(2);
    stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(w.resyncs).toBe(2);
  });
});

describe('gateReadiness', () => {
  it('ready only with Redis answering and, when watching, policies listed without problems', async () => {
    const pong = () => Promise.resolve('PONG');
    expect(await gateReadiness(pong, undefined)()).toEqual({ ok: true, problems: [] });
    expect(await gateReadiness(() => Promise.reject(new Error('down')), undefined)()).toEqual({
      ok: false,
      problems: ['redis unreachable'],
    });
    expect(await gateReadiness(pong, fakeWatcher({ synced: false, ok: true, problems: [] }))()).toEqual({
      ok: false,
      problems: ['policies not listed yet'],
    });
    expect(await gateReadiness(pong, fakeWatcher({ synced: false, ok: false, problems: ['GatePolicy: CRD missing'] }))()).toEqual({
      ok: false,
      problems: ['GatePolicy: CRD missing'],
    });
  });
});
