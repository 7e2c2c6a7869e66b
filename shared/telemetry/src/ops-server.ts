import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export type ExtraRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

/**
 * /healthz, /readyz and /metrics for the worker services (the receiver has them in its Fastify app). Extra routes
 * (the gate's audit endpoints) are tried first; unanswered requests get 404.
 */
export function createOpsServer(opts: { registry: Registry; ready: () => Promise<boolean>; routes?: ExtraRoute[] }): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      try {
        for (const route of opts.routes ?? []) if (await route(req, res, url)) return;
        if (url.pathname === '/healthz') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        } else if (url.pathname === '/readyz') {
          const ok = await opts.ready().catch(() => false);
          res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok }));
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
