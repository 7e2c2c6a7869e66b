/**
 * The operations surface of every service on Fastify: `opsRoutes` (/healthz, /readyz, /metrics) is the one plugin the
 * receiver's app and the workers' ops ports register; `createOpsApp` is the workers' whole ops server (the gate adds
 * its audit API and pages as further plugins). GET routes answer HEAD too (Fastify's exposeHeadRoutes); anything
 * unrouted is a JSON 404.
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply } from 'fastify';
import { Gauge, type Registry } from 'prom-client';

/** Readiness: a boolean, or with the problems that make it not ready (named in the /readyz body). */
export type Readiness = boolean | { ok: boolean; problems?: string[] };

export interface OpsRoutesOptions {
  registry: Registry;
  ready: () => Promise<Readiness>;
}

/** Starts listening and returns the port actually bound: the configured one, or the one the OS chose for port 0. */
export async function listenPort(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/** /healthz (the process answers), /readyz (its dependencies answer: 200 or 503 naming problems), /metrics. */
export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = (app, opts) => {
  app.get('/healthz', () => Promise.resolve({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    // A readiness check that throws is "not ready", never a 500 the probe would read the same way anyway.
    const r: Readiness = await opts.ready().catch(() => false);
    const body = typeof r === 'boolean' ? { ok: r } : { ok: r.ok, ...(r.problems?.length ? { problems: r.problems } : {}) };
    return reply.code(body.ok ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await opts.registry.metrics();
    return reply.header('content-type', opts.registry.contentType).send(text);
  });
  return Promise.resolve();
};

export interface OpsAppOptions extends OpsRoutesOptions {
  /** Further routes (the gate's audit API and pages), registered before the ops routes. */
  plugins?: FastifyPluginAsync[];
}

/** The ops server of a worker service: no request logs (probes and scrapes would drown the decisions). */
export function createOpsApp(opts: OpsAppOptions): FastifyInstance {
  // Kubernetes names go up to 253 characters; the gate's page paths carry two of them.
  const app = Fastify({
    logger: false,
    routerOptions: { maxParamLength: 1024 },
    // A path that is not valid percent-encoding names nothing here: the same 404 as any unknown path, not a 400.
    frameworkErrors: (err, _req, res) => {
      // The hook's reply type is generic over route schemas this server does not use.
      const reply = res as unknown as FastifyReply;
      if (err.code === 'FST_ERR_BAD_URL') return void reply.code(404).send({ error: 'not found' });
      return void reply.code(err.statusCode ?? 400).send({ error: err.message });
    },
  });
  for (const plugin of opts.plugins ?? []) void app.register(plugin);
  void app.register(opsRoutes, { registry: opts.registry, ready: opts.ready });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not found' }));
  return app;
}

export interface QueueGaugeSource {
  name: string;
  waiting(): Promise<number>;
  /** Age of the oldest waiting job in seconds (0 when empty). */
  oldestAgeSeconds(): Promise<number>;
}

/** Queue depth and age, read from Redis when Prometheus scrapes (what the autoscalers and alerts watch). */
export function registerQueueGauges(registry: Registry, sources: QueueGaugeSource[]): void {
  new Gauge({
    name: 'gitops_gate_queue_waiting',
    help: 'Jobs waiting in a queue',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      for (const s of sources) this.set({ queue: s.name }, await s.waiting().catch(() => Number.NaN));
    },
  });
  new Gauge({
    name: 'gitops_gate_queue_oldest_age_seconds',
    help: 'Age of the oldest waiting job',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      for (const s of sources) this.set({ queue: s.name }, await s.oldestAgeSeconds().catch(() => Number.NaN));
    },
  });
}
