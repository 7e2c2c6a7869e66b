/**
 * OpenTelemetry tracing: one trace per delivery, from the webhook through the queues (the W3C trace context rides in
 * each job's `trace` field) to verification and the gate's patch. Off unless an OTLP endpoint (or, in tests, an
 * exporter) is configured: the API then hands out no-op spans, so the instrumented code costs next to nothing.
 */
import { context, propagation, trace, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';

export type TraceCarrier = Record<string, string>;

const TRACER = 'gitops-gate';

export function tracer(): Tracer {
  return trace.getTracer(TRACER);
}

export interface TracingHandle {
  enabled: boolean;
  shutdown(): Promise<void>;
}

/**
 * Installs the global tracer provider for this process. `endpoint` is the OTLP/HTTP base URL
 * (OTEL_EXPORTER_OTLP_ENDPOINT); `exporter` replaces it in tests (synchronous export, e.g. InMemorySpanExporter).
 */
export function setupTracing(opts: { service: string; endpoint?: string; exporter?: SpanExporter }): TracingHandle {
  if (!opts.endpoint && !opts.exporter) return { enabled: false, shutdown: () => Promise.resolve() };
  const processor = opts.exporter
    ? new SimpleSpanProcessor({ exporter: opts.exporter })
    : new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${opts.endpoint!.replace(/\/+$/, '')}/v1/traces` }) });
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': opts.service }), spanProcessors: [processor] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    enabled: true,
    async shutdown() {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}

/** The active trace context as a carrier to put into a job (empty when tracing is off). */
export function injectTrace(): TraceCarrier | undefined {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

/**
 * Runs fn inside a span that continues the trace carried by a job (or starts one), ending it when fn settles and
 * recording a thrown error on it.
 */
export async function inSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean | undefined>,
  fn: (span: Span) => Promise<T>,
  carrier?: TraceCarrier,
): Promise<T> {
  const parent = carrier ? propagation.extract(context.active(), carrier) : context.active();
  const clean = Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined)) as Record<
    string,
    string | number | boolean
  >;
  return tracer().startActiveSpan(name, { attributes: clean }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
