import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createServiceTelemetry } from './index.js';

describe('createServiceTelemetry', () => {
  it('tags logs and metrics with the service and leaves tracing off without an endpoint', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, cb) => {
        lines.push(chunk.toString());
        cb();
      },
    });
    const t = createServiceTelemetry('receiver', { LOG_LEVEL: 'info' }, sink);
    t.logger.info({ n: 1 }, 'started');
    expect(JSON.parse(lines[0]!)).toMatchObject({ service: 'receiver', msg: 'started' });
    expect(t.tracing.enabled).toBe(false);
    expect(await t.registry.metrics()).toContain('service="receiver"');
    await t.tracing.shutdown();
  });

  it('honours the log level', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, cb) => {
        lines.push(chunk.toString());
        cb();
      },
    });
    createServiceTelemetry('gate', { LOG_LEVEL: 'warn' }, sink).logger.info({}, 'hidden');
    expect(lines).toEqual([]);
  });
});
