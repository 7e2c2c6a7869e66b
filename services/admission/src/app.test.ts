/**
 * The webhook over HTTPS, as the API server calls it: AdmissionReviews built from real Pod and Deployment manifests,
 * verdicts stored by the gate's own code (gate-store's image-state.ts recordImage), policies read from the snapshot the gate publishes.
 */
import { request } from 'node:https';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createImageState } from '@gitops-gate/gate-store';
import { createServingCertificate } from '@gitops-gate/k8s-sandbox';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createAdmissionApp } from './app.js';
import { createAdmissionAudit } from './audit.js';
import { createCachedResultLookup } from './result-cache.js';
import { createAdmissionInputs, createPolicyCache, createResultLookup, createNamespaceIndex } from './sources.js';
import {
  D_FAIL,
  D_OK,
  D_UNKNOWN,
  D_UNPINNED,
  deployment,
  gatePolicy,
  IMAGE,
  imageVerdict,
  PINNED,
  pod,
  review,
  UNPINNED,
} from './testing/fixtures.js';

const prefix = 'adm-test';
let server: TestRedis;
let redis: Redis;
let app: ReturnType<typeof createAdmissionApp>;
let port = 0;
const cert = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });

function post(body: string, path = '/validate'): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca: cert.caPem,
        servername: 'localhost',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const admit = async (obj: Record<string, unknown>) => {
  const r = await post(JSON.stringify(review(obj)));
  expect(r.status).toBe(200);
  return (
    r.json as {
      response: {
        uid: string;
        allowed: boolean;
        warnings?: string[];
        status?: { message: string; details: { causes: { reason: string }[] } };
      };
    }
  ).response;
};

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
  const logger = createLogger('admission-test', 'silent');
  await redis.set(
    policySnapshotKey(prefix),
    JSON.stringify({
      revision: 'r1',
      policies: [gatePolicy({ namespace: 'shop', requirePinned: true }), gatePolicy({ namespace: 'staging', mode: 'Audit' })],
    }),
  );
  const images = createImageState(redis, prefix);
  await images.recordImage(imageVerdict({ namespace: 'shop', digest: D_OK, ok: true, sourceCommit: PINNED }));
  await images.recordImage(imageVerdict({ namespace: 'shop', digest: D_FAIL, ok: false, sourceCommit: PINNED }));
  await images.recordImage(imageVerdict({ namespace: 'shop', digest: D_UNPINNED, ok: true, sourceCommit: UNPINNED }));
  const policies = createPolicyCache(redis, prefix, logger);
  await policies.refresh();
  const index = createNamespaceIndex();
  index.update(policies.current(), [
    {
      metadata: { name: 'shop', namespace: 'argocd', annotations: { 'gitops-gate.io/verified-sha': PINNED } },
      spec: { destination: { namespace: 'shop' } },
    },
  ]);
  const audit = createAdmissionAudit(redis, prefix, logger, 3_600_000);
  app = createAdmissionApp(
    {
      policiesFor: (ns) => index.policiesFor(ns),
      pinned: (ns) => index.pinned(ns),
      lookup: createResultLookup(redis, prefix),
      record: (w, d) => audit.record(w, d),
    },
    { https: { cert: cert.certPem, key: cert.keyPem }, bodyLimit: 64 * 1024 },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
  redis?.disconnect();
  await server?.close();
});

describe('admission webhook over HTTPS', () => {
  it('allows a Pod whose image digest has a passing verdict built from a pinned commit', async () => {
    const r = await admit(pod('shop', [`${IMAGE}@${D_OK}`]));
    expect(r).toMatchObject({ uid: 'e911857d-c318-11e8-bbad-025000000001', allowed: true });
    expect(r.warnings).toBeUndefined();
  });

  it('allows a Deployment whose template runs the verified digest', async () => {
    expect((await admit(deployment('shop', `${IMAGE}:v1@${D_OK}`))).allowed).toBe(true);
  });

  it.each([
    ['tag only', `${IMAGE}:v1`, 'TAG_ONLY'],
    ['unknown digest', `${IMAGE}@${D_UNKNOWN}`, 'NO_VERDICT'],
    ['failing verdict', `${IMAGE}@${D_FAIL}`, 'VERDICT_FAILED'],
    ['built from an unpinned commit', `${IMAGE}@${D_UNPINNED}`, 'UNPINNED_COMMIT'],
  ])('denies %s, saying what is missing', async (_what, image, code) => {
    const r = await admit(pod('shop', [image]));
    expect(r.allowed).toBe(false);
    expect(r.status?.details.causes.map((c) => c.reason)).toEqual([code]);
    expect(r.status?.message).toContain(`[${code}]`);
  });

  it('denies a Deployment whose template runs a tag', async () => {
    expect((await admit(deployment('shop', `${IMAGE}:latest`))).allowed).toBe(false);
  });

  it('Audit: allows with a warning', async () => {
    const r = await admit(pod('staging', [`${IMAGE}:latest`]));
    expect(r.allowed).toBe(true);
    expect(r.warnings?.[0]).toMatch(/audit \(TAG_ONLY\)/);
  });

  it('break glass: the exemption label admits, and the admission is audited', async () => {
    const r = await admit(pod('shop', [`${IMAGE}:latest`], { labels: { 'gitops-gate.io/admission-exempt': 'true' } }));
    expect(r.allowed).toBe(true);
    const records = (await redis.xrange(`${prefix}:admission-audit`, '-', '+')).map(
      ([, f]) => JSON.parse(f[1] ?? '{}') as { outcome: string },
    );
    expect(records.map((x) => x.outcome)).toContain('exempt');
    expect(records.filter((x) => x.outcome === 'deny').length).toBeGreaterThanOrEqual(5);
  });

  it('malformed review → 400', async () => {
    expect((await post('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}')).status).toBe(400);
    expect(
      (await post(JSON.stringify(review({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'shop' }, spec: {} }))))
        .status,
    ).toBe(400);
    expect((await post('{not json')).status).toBe(400);
  });

  it('oversized review → 413', async () => {
    const big = pod('shop', [`${IMAGE}@${D_OK}`], { labels: { pad: 'x'.repeat(70 * 1024) } });
    expect((await post(JSON.stringify(review(big)))).status).toBe(413);
  });
});

describe('no verdict yet: verify on the spot (ADMISSION_NO_VERDICT=verify)', () => {
  it('asks for the missing builds, then decides again from the store; never allows without a verdict', async () => {
    const logger = createLogger('admission-test', 'silent');
    const policies = createPolicyCache(redis, prefix, logger);
    await policies.refresh();
    const index = createNamespaceIndex();
    index.update(policies.current(), [
      {
        metadata: { name: 'shop', namespace: 'argocd', annotations: { 'gitops-gate.io/verified-sha': PINNED } },
        spec: { destination: { namespace: 'shop' } },
      },
    ]);
    const fresh = `sha256:${'6'.repeat(64)}`;
    const never = `sha256:${'7'.repeat(64)}`;
    const asked: string[][] = [];
    const verifying = createAdmissionApp({
      policiesFor: (ns) => index.policiesFor(ns),
      pinned: (ns) => index.pinned(ns),
      lookup: createResultLookup(redis, prefix),
      record: () => undefined,
      // Stands in for the verifiers: the queued job's verdict lands in the store before the wait ends (only for `fresh`).
      verifyNow: async (builds) => {
        asked.push(builds);
        if (builds.includes(`${IMAGE}@${fresh}`))
          await createImageState(redis, prefix).recordImage(
            imageVerdict({ namespace: 'shop', digest: fresh, ok: true, sourceCommit: PINNED }),
          );
      },
    });
    const ask = async (digest: string) =>
      (await verifying.inject({ method: 'POST', url: '/validate', payload: review(pod('shop', [`${IMAGE}@${digest}`])) })).json<{
        response: { allowed: boolean };
      }>().response;
    expect((await ask(fresh)).allowed).toBe(true);
    expect((await ask(never)).allowed).toBe(false);
    expect(asked).toEqual([[`${IMAGE}@${fresh}`], [`${IMAGE}@${never}`]]);
    await verifying.close();
  });
});

describe('verdict cache (ADMISSION_RESULT_CACHE_MS) over the real store', () => {
  const BOUND_MS = 300;
  const setUp = async (digest: string) => {
    const logger = createLogger('admission-test', 'silent');
    const policies = createPolicyCache(redis, prefix, logger);
    const index = createNamespaceIndex();
    const apps = [
      {
        metadata: { name: 'shop', namespace: 'argocd', annotations: { 'gitops-gate.io/verified-sha': PINNED } },
        spec: { destination: { namespace: 'shop' } },
      },
    ];
    // What main.ts runs once a second.
    const inputs = createAdmissionInputs(policies, async () => apps, index);
    await inputs.refresh();
    const webhook = createAdmissionApp({
      policiesFor: (ns) => index.policiesFor(ns),
      pinned: (ns) => index.pinned(ns),
      lookup: createCachedResultLookup(createResultLookup(redis, prefix), { ttlMs: BOUND_MS }),
      record: () => undefined,
    });
    await createImageState(redis, prefix).recordImage(imageVerdict({ namespace: 'shop', digest, ok: true, sourceCommit: PINNED }));
    const ask = async () =>
      (await webhook.inject({ method: 'POST', url: '/validate', payload: review(pod('shop', [`${IMAGE}@${digest}`])) })).json<{
        response: { allowed: boolean; status?: { details: { causes: { reason: string }[] } } };
      }>().response;
    return { webhook, ask, inputs };
  };

  it('attacker: a verdict revoked after a cached allow is denied once the bound has passed', async () => {
    const digest = `sha256:${'8'.repeat(64)}`;
    const { webhook, ask } = await setUp(digest);
    expect((await ask()).allowed).toBe(true); // now cached
    // A re-verification fails (the signer's identity was revoked): the gate stores the rejection, which wins.
    await createImageState(redis, prefix).recordImage(imageVerdict({ namespace: 'shop', digest, ok: false, sourceCommit: PINNED }));
    await new Promise((r) => setTimeout(r, BOUND_MS + 20));
    const r = await ask();
    expect(r.allowed).toBe(false);
    expect(r.status?.details.causes.map((c) => c.reason)).toEqual(['VERDICT_FAILED']);
    await webhook.close();
  });

  it('attacker: a policy changed after a cached allow — the cached pass of the old generation never counts', async () => {
    const digest = `sha256:${'9'.repeat(64)}`;
    const { webhook, ask, inputs } = await setUp(digest);
    expect((await ask()).allowed).toBe(true);
    const snapshot = await redis.get(policySnapshotKey(prefix));
    await redis.set(
      policySnapshotKey(prefix),
      JSON.stringify({
        revision: 'r2',
        policies: [
          gatePolicy({ namespace: 'shop', requirePinned: true, generation: 2 }),
          gatePolicy({ namespace: 'staging', mode: 'Audit' }),
        ],
      }),
    );
    await inputs.refresh(); // main.ts: within a second
    const r = await ask();
    expect(r.allowed).toBe(false);
    expect(r.status?.details.causes.map((c) => c.reason)).toEqual(['NO_VERDICT']);
    await redis.set(policySnapshotKey(prefix), snapshot ?? '');
    await webhook.close();
  });
});

describe('admission inputs (policies and Applications, re-read once a second)', () => {
  it('is not ready before the gate published its snapshot; then indexes it, and re-indexes when it changes', async () => {
    const p = 'adm-inputs';
    const policies = createPolicyCache(redis, p, createLogger('admission-test', 'silent'));
    const index = createNamespaceIndex();
    const inputs = createAdmissionInputs(policies, async () => [], index);
    await inputs.refresh();
    expect(inputs.ready()).toBe(false);
    await redis.set(policySnapshotKey(p), JSON.stringify({ revision: 'r1', policies: [gatePolicy({ namespace: 'shop' })] }));
    await inputs.refresh();
    expect(inputs.ready()).toBe(true);
    expect(index.policiesFor('shop').map((x) => x.identity.generation)).toEqual([1]);
    await inputs.refresh(); // unchanged bytes: the same compiled policies stay in force
    expect(index.policiesFor('shop').map((x) => x.identity.generation)).toEqual([1]);
    await redis.set(policySnapshotKey(p), JSON.stringify({ revision: 'r2', policies: [gatePolicy({ namespace: 'shop', generation: 3 })] }));
    await inputs.refresh();
    expect(index.policiesFor('shop').map((x) => x.identity.generation)).toEqual([3]);
    await redis.set(policySnapshotKey(p), '{corrupt');
    await inputs.refresh().catch(() => undefined);
    expect(index.policiesFor('shop').map((x) => x.identity.generation)).toEqual([3]); // fail closed: what was in force
  });
});

describe('before the policies are read', () => {
  it('answers 503 (failurePolicy Fail denies) instead of admitting from an empty policy set', async () => {
    const notYet = createAdmissionApp({
      policiesFor: () => [],
      pinned: () => new Set(),
      lookup: async () => new Map(),
      record: () => undefined,
      ready: () => false,
    });
    expect((await notYet.inject({ method: 'POST', url: '/validate', payload: review(pod('shop', [`${IMAGE}:latest`])) })).statusCode).toBe(
      503,
    );
    expect((await notYet.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(503);
    await notYet.close();
  });
});
