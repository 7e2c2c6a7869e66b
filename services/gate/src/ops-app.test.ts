/**
 * The gate's whole HTTP surface through Fastify's inject(): every route, HEAD, 404 and 405, and the page headers (CSP
 * and friends) on every HTML answer, errors included.
 */
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Readiness } from '@gitops-gate/telemetry';
import { createGateOpsApp } from './ops-app.js';
import { UI_SECURITY_HEADERS } from './ui/index.js';
import { application, decision, memoryAudit, memoryStore } from './ui/test-fakes.js';

const A = 'a'.repeat(40);
const NOW = new Date('2025-03-01T12:00:00Z');

async function setup(ready: () => Promise<Readiness> = async () => true) {
  const registry = new Registry();
  new Counter({ name: 'gitops_gate_decisions_total', help: 'decisions', registers: [registry] }).inc();
  const audit = memoryAudit(() => NOW);
  const store = memoryStore([application({ name: 'shop', pin: { sha: A, signer: 'dev@example.com', method: 'ssh' } })]);
  await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
  return createGateOpsApp({ registry, ready, audit, store, namespaces: [], ui: { now: () => NOW } });
}

function expectPageHeaders(headers: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(UI_SECURITY_HEADERS)) expect(headers[k], k).toBe(v);
  expect(headers['content-type']).toBe('text/html; charset=utf-8');
}

describe('gate ops app', () => {
  it('/healthz, /readyz (naming problems), /metrics', async () => {
    const app = await setup(async () => ({ ok: false, problems: ['redis unreachable'] }));
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
    const r = await app.inject({ method: 'GET', url: '/readyz' });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ ok: false, problems: ['redis unreachable'] });
    const m = await app.inject({ method: 'GET', url: '/metrics' });
    expect(m.statusCode).toBe(200);
    expect(m.body).toContain('gitops_gate_decisions_total 1');
  });

  it('/api/decisions filters the audit trail and refuses a bad date', async () => {
    const app = await setup();
    const ok = await app.inject({ method: 'GET', url: '/api/decisions?app=argocd/shop&limit=5' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json<{ decisions: { sha: string }[] }>().decisions.map((d) => d.sha)).toEqual([A]);
    const bad = await app.inject({ method: 'GET', url: '/api/decisions?since=yesterday' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: 'since must be an ISO date' });
    expect((await app.inject({ method: 'POST', url: '/api/decisions' })).statusCode).toBe(404);
  });

  it('/ui and /ui/app/<ns>/<name> are HTML with the security headers; HEAD has them and no body', async () => {
    const app = await setup();
    for (const url of ['/ui', '/ui/', '/ui/app/argocd/shop']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expectPageHeaders(res.headers);
      expect(res.body).toContain('argocd/shop');
      const head = await app.inject({ method: 'HEAD', url });
      expect(head.statusCode, url).toBe(200);
      expectPageHeaders(head.headers);
      expect(head.body).toBe('');
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
    }
  });

  it('attacker: writes to the pages are 405 with Allow and the page headers', async () => {
    const app = await setup();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const) {
      const res = await app.inject({ method, url: '/ui/app/argocd/shop' });
      expect(res.statusCode, method).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
      expectPageHeaders(res.headers);
    }
  });

  it('attacker: unknown pages, hostile names and bad encodings are 404s that escape what they echo', async () => {
    const app = await setup();
    const page = await app.inject({ method: 'GET', url: '/ui/nope' });
    expect(page.statusCode).toBe(404);
    expectPageHeaders(page.headers);
    const evil = await app.inject({ method: 'GET', url: `/ui/app/argocd/${encodeURIComponent('<script>x')}` });
    expect(evil.statusCode).toBe(404);
    expect(evil.body).not.toContain('<script>');
    expect((await app.inject({ method: 'GET', url: '/ui/app/argocd/%E0%A4%A' })).statusCode).toBe(404);
    const other = await app.inject({ method: 'GET', url: '/nope' });
    expect(other.statusCode).toBe(404);
    expect(other.json()).toEqual({ error: 'not found' });
  });
});
