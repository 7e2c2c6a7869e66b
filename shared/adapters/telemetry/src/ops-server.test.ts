/** The shared ops routes (receiver, verifier, gate) through Fastify's inject(): every route, HEAD, 404. */
import { Registry, Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createOpsApp, listenPort, type Readiness } from './ops-server.js';

function app(ready: () => Promise<Readiness> = async () => true) {
  const registry = new Registry();
  new Counter({ name: 'test_things_total', help: 'things', registers: [registry] }).inc();
  return createOpsApp({ registry, ready });
}

describe('/readyz', () => {
  it('answers 200/503 from a boolean, and names the problems when given', async () => {
    const readyz = async (ready: () => Promise<Readiness>) => {
      const res = await app(ready).inject({ method: 'GET', url: '/readyz' });
      return { status: res.statusCode, body: res.json<unknown>() };
    };
    expect(await readyz(async () => true)).toEqual({ status: 200, body: { ok: true } });
    expect(await readyz(async () => ({ ok: false, problems: ['ClusterGatePolicy CRD not installed'] }))).toEqual({
      status: 503,
      body: { ok: false, problems: ['ClusterGatePolicy CRD not installed'] },
    });
    expect(await readyz(() => Promise.reject(new Error('x')))).toEqual({ status: 503, body: { ok: false } });
  });
});

describe('/healthz and /metrics', () => {
  it('healthz is 200 JSON; metrics is the registry in its content type', async () => {
    const a = app();
    const h = await a.inject({ method: 'GET', url: '/healthz' });
    expect(h.statusCode).toBe(200);
    expect(h.json()).toEqual({ ok: true });
    const m = await a.inject({ method: 'GET', url: '/metrics' });
    expect(m.statusCode).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    expect(m.body).toContain('test_things_total 1');
  });
  it('HEAD answers like GET without a body; other methods and unknown paths are a JSON 404', async () => {
    const a = app();
    const head = await a.inject({ method: 'HEAD', url: '/healthz' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    for (const req of [
      { method: 'POST' as const, url: '/metrics' },
      { method: 'GET' as const, url: '/nope' },
      { method: 'DELETE' as const, url: '/readyz' },
    ]) {
      const res = await a.inject(req);
      expect(res.statusCode, `${req.method} ${req.url}`).toBe(404);
      expect(res.json()).toEqual({ error: 'not found' });
    }
  });
});

describe('listenPort', () => {
  it('returns the port the OS chose for port 0, so the started log names a reachable port', async () => {
    const app = createOpsApp({ registry: new Registry(), ready: () => Promise.resolve(true) });
    const port = await listenPort(app, '127.0.0.1', 0);
    try {
      expect(port).toBeGreaterThan(0);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
