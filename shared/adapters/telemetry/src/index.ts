/**
 * Logging and metrics shared by the services. Log messages are constant strings; the variable parts go in fields,
 * so log pipelines can group and alert on messages.
 */
import { pino, type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';

export type { Logger } from 'pino';

export function createLogger(service: string, level: string, destination?: NodeJS.WritableStream): Logger {
  const opts = {
    level,
    base: { service },
    // Secrets must never reach logs, even when an error object or request carries them.
    redact: { paths: ['*.secret', '*.token', '*.password', 'req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  return destination ? pino(opts, destination as never) : pino(opts);
}

/** One registry per process (not the global one), so tests can create several apps in one process. */
export function createMetricsRegistry(service: string, options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'gitops_gate_' });
  return registry;
}
export * from './ops-server.js';
export * from './tracing.js';
