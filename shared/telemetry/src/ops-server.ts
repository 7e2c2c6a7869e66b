import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Gauge, type Registry } from 'prom-client';

export type ExtraRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

/**
 * /healthz, /readyz and /metrics for the worker services (the receiver has them in its Fastify app). Extra routes
 * (the gate's audit endpoints) are tried first; unanswered requests get 404.
 */
/** Readiness: a boolean, or with the problems that make it not ready (named in the /readyz body). */
export type Readiness = boolean | { ok: boolean; problems?: string[] };

export function createOpsServer(opts: { registry: Registry; ready: () => Promise<Readiness>; routes?: ExtraRoute[] }): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      try {
        for (const route of opts.routes ?? []) if (await route(req, res, url)) return;
        if (url.pathname === '/healthz') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        } else if (url.pathname === '/readyz') {
          const r: Readiness = await opts.ready().catch(() => false);
          const body = typeof r === 'boolean' ? { ok: r } : { ok: r.ok, ...(r.problems?.length ? { problems: r.problems } : {}) };
          res.writeHead(body.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        } else if (url.pathname === '/metrics') {
          const text = await opts.registry.metrics();
          res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text);
        } else {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
        }
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: (err as Error).message }));
      }
    })();
  });
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
