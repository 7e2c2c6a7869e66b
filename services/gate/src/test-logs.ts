import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@gitops-gate/telemetry';

/** A logger whose lines (parsed) tests can read: messages and levels. */
export function capturingLogger(): { logger: Logger; lines: { msg: string; level: number; [k: string]: unknown }[] } {
  const lines: { msg: string; level: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string; level: number });
      cb();
    },
  });
  return { logger: createLogger('gate-test', 'debug', sink), lines };
}
