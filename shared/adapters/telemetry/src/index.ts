/**
 * Logging and metrics shared by the services. Log messages are constant strings; the variable parts go in fields,
 * so log pipelines can group and alert on messages.
 */
import { pino, type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { setupTracing, type TracingHandle } from './tracing.js';

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

/** The configuration fields a service's telemetry needs (structural, so telemetry does not depend on config). */
export interface ServiceTelemetrySettings {
  LOG_LEVEL: string;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
}

export interface ServiceTelemetry {
  logger: Logger;
  tracing: TracingHandle;
  registry: Registry;
}

/**
 * What every service process starts with, in one call so the services cannot drift apart: a logger tagged with the
 * service, tracing named `gitops-gate-<service>` (off without an OTLP endpoint), and the process's metrics registry.
 */
export function createServiceTelemetry(
  service: string,
  settings: ServiceTelemetrySettings,
  destination?: NodeJS.WritableStream,
): ServiceTelemetry {
  return {
    logger: createLogger(service, settings.LOG_LEVEL, destination),
    tracing: setupTracing({ service: `gitops-gate-${service}`, endpoint: settings.OTEL_EXPORTER_OTLP_ENDPOINT }),
    registry: createMetricsRegistry(service),
  };
}
