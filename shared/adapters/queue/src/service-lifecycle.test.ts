/** The one shutdown every service installs: once per process, in order, every step tried, exit code tells. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { installShutdown, type LifecycleLogger } from './service-lifecycle.js';

function recorder() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const logger: LifecycleLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { lines, logger };
}

describe('installShutdown', () => {
  it('closes every step in order on SIGTERM, once even when signalled twice, and exits 0', async () => {
    const signals = new EventEmitter();
    const order: string[] = [];
    const exits: number[] = [];
    const { logger } = recorder();
    let releaseWorker: () => void = () => undefined;
    const workerClosed = new Promise<void>((r) => (releaseWorker = r));
    const s = installShutdown({
      service: 't',
      logger,
      signals,
      exit: (c) => exits.push(c),
      steps: [
        { name: 'worker', close: async () => (order.push('worker'), workerClosed) },
        { name: 'queue', close: () => order.push('queue') },
        { name: 'redis', close: () => order.push('redis') },
      ],
    });
    signals.emit('SIGTERM');
    signals.emit('SIGINT');
    // The worker (jobs in hand) finishes before anything it writes to is closed.
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['worker']);
    releaseWorker();
    expect(await s.run('again')).toBe(0);
    expect(order).toEqual(['worker', 'queue', 'redis']);
    expect(exits).toEqual([0]);
  });

  it('a failing step is logged with its error, the rest still close, and the exit code is 1', async () => {
    const closed: string[] = [];
    const exits: number[] = [];
    const { lines, logger } = recorder();
    const boom = new Error('queue close failed');
    const s = installShutdown({
      service: 't',
      logger,
      signals: new EventEmitter(),
      exit: (c) => exits.push(c),
      steps: [
        { name: 'queue', close: () => Promise.reject(boom) },
        { name: 'redis', close: () => closed.push('redis') },
      ],
    });
    expect(await s.run('SIGINT')).toBe(1);
    expect(closed).toEqual(['redis']);
    expect(exits).toEqual([1]);
    expect(lines.find((l) => l.level === 'error')).toMatchObject({ obj: { err: boom, step: 'queue' }, msg: 'shutdown step failed' });
  });
});
