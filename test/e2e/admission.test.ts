/**
 * The admission backstop end to end: the sandbox API server calls the ValidatingWebhookConfiguration registered with
 * kubectl (as kube-apiserver does: AdmissionReview over HTTPS trusting the caBundle, namespaceSelector, failurePolicy,
 * timeout), and `kubectl apply -f pod.yaml` is denied or admitted by the real webhook answering from Redis.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAdmissionApp,
  createAdmissionAudit,
  createPolicyCache,
  createResultLookup,
  createNamespaceIndex,
  createCachedResultLookup,
} from '@gitops-gate/admission';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createImageState } from '@gitops-gate/gate-store';
import {
  argoApplicationKind,
  createSandboxApiServer,
  createServingCertificate,
  validatingWebhookConfigurationKind,
  workloadKinds,
  type SandboxApiServer,
} from '@gitops-gate/k8s-sandbox';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import {
  D_OK,
  D_UNKNOWN,
  deployment,
  gatePolicy,
  IMAGE,
  imageVerdict,
  PINNED,
  pod,
} from '../../services/admission/src/testing/fixtures.js';

const KUBECTL = process.env['KUBECTL'] ?? '/usr/bin/kubectl';
const prefix = 'adm-e2e';
const cert = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });
let dir: string;
let kubeconfig: string;
let server: SandboxApiServer;
let redisServer: TestRedis;
let redis: Redis;
let app: ReturnType<typeof createAdmissionApp>;
let webhookUrl = '';

function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args],
      { env: { PATH: process.env['PATH'] ?? '', HOME: dir }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
async function apply(obj: object): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(dir, `m-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, dump(obj));
  return kubectl('apply', '-f', file);
}
/** Replaces the registration (the sandbox serves no strategic merge patch for built-in kinds, which `apply` would send). */
async function register(cfg: object): Promise<void> {
  await kubectl('delete', 'validatingwebhookconfiguration', 'gitops-gate-admission', '--ignore-not-found');
  const file = join(dir, `vwc-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, dump(cfg));
  const r = await kubectl('create', '-f', file);
  expect(r.stderr).toBe('');
}
function webhookConfig(opts: { url: string; failurePolicy?: 'Fail' | 'Ignore'; timeoutSeconds?: number }): object {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'gitops-gate-admission' },
    webhooks: [
      {
        name: 'images.admission.gitops-gate.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: opts.failurePolicy ?? 'Fail',
        timeoutSeconds: opts.timeoutSeconds ?? 5,
        clientConfig: { url: opts.url, caBundle: Buffer.from(cert.caPem).toString('base64') },
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['gitops-gate', 'kube-system'] }],
        },
        rules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'], scope: 'Namespaced' },
          {
            apiGroups: ['apps'],
            apiVersions: ['v1'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'],
            scope: 'Namespaced',
          },
          {
            apiGroups: ['batch'],
            apiVersions: ['v1'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['jobs', 'cronjobs'],
            scope: 'Namespaced',
          },
        ],
      },
    ],
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gg-admission-e2e-'));
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  const logger = createLogger('admission-e2e', 'silent');
  await redis.set(
    policySnapshotKey(prefix),
    JSON.stringify({ revision: 'r1', policies: [gatePolicy({ namespace: 'shop', requirePinned: true })] }),
  );
  await createImageState(redis, prefix).recordImage(imageVerdict({ namespace: 'shop', digest: D_OK, ok: true, sourceCommit: PINNED }));
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
      // As main.ts wires it: verdicts through the bounded in-process cache.
      lookup: createCachedResultLookup(createResultLookup(redis, prefix), { ttlMs: 1_000 }),
      record: (w, d) => audit.record(w, d),
    },
    { https: { cert: cert.certPem, key: cert.keyPem } },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  webhookUrl = `https://localhost:${(app.server.address() as { port: number }).port}/validate`;
  server = await createSandboxApiServer({
    kinds: [argoApplicationKind, validatingWebhookConfigurationKind, ...workloadKinds],
    namespaces: ['default', 'kube-system', 'argocd', 'shop'],
  });
  kubeconfig = join(dir, 'kubeconfig');
  await server.writeKubeconfig(kubeconfig);
  await register(webhookConfig({ url: webhookUrl }));
});
afterAll(async () => {
  await server?.close();
  await app?.close();
  redis?.disconnect();
  await redisServer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('kubectl apply against the sandbox with the webhook registered', () => {
  it('denies a Pod running a tag, naming the webhook and the rule', async () => {
    const r = await apply(pod('shop', [`${IMAGE}:v1`]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('admission webhook "images.admission.gitops-gate.io" denied the request');
    expect(r.stderr).toContain('TAG_ONLY');
    expect((await kubectl('get', 'pods', '-n', 'shop', '-o', 'name')).stdout).toBe('');
  });

  it('denies an unknown digest and a Deployment whose template runs a tag', async () => {
    expect((await apply(pod('shop', [`${IMAGE}@${D_UNKNOWN}`]))).stderr).toContain('NO_VERDICT');
    expect((await apply(deployment('shop', `${IMAGE}:latest`))).stderr).toContain('TAG_ONLY');
  });

  it('admits the verified digest built from the pinned commit', async () => {
    const r = await apply(pod('shop', [`${IMAGE}@${D_OK}`]));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('pod/web created');
  });

  it('does not call the webhook for kube-system (namespaceSelector)', async () => {
    expect((await apply(pod('kube-system', [`${IMAGE}:v1`]))).stdout).toContain('created');
  });

  it('failurePolicy Fail: an unreachable or slow webhook denies; Ignore admits', async () => {
    const slow = createServer({ cert: cert.certPem, key: cert.keyPem }, () => undefined);
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const slowUrl = `https://localhost:${(slow.address() as { port: number }).port}/validate`;
    try {
      await register(webhookConfig({ url: slowUrl, timeoutSeconds: 1 }));
      const t0 = Date.now();
      const denied = await apply(deployment('shop', `${IMAGE}@${D_OK}`));
      expect(denied.stderr).toMatch(/failed calling webhook "images.admission.gitops-gate.io".*deadline/);
      expect(Date.now() - t0).toBeLessThan(15_000);
      await register(webhookConfig({ url: slowUrl, timeoutSeconds: 1, failurePolicy: 'Ignore' }));
      expect((await apply(deployment('shop', `${IMAGE}:latest`))).stdout).toContain('created');
    } finally {
      slow.closeAllConnections();
      slow.close();
      await register(webhookConfig({ url: webhookUrl }));
    }
  });

  it('attacker: a webhook served with a certificate the caBundle does not trust fails closed', async () => {
    const other = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });
    await register({
      ...(webhookConfig({ url: webhookUrl }) as Record<string, unknown>),
      webhooks: [
        {
          ...(webhookConfig({ url: webhookUrl }) as { webhooks: Record<string, unknown>[] }).webhooks[0],
          clientConfig: { url: webhookUrl, caBundle: Buffer.from(other.caPem).toString('base64') },
        },
      ],
    });
    try {
      expect((await apply(pod('shop', [`${IMAGE}@${D_OK}`], { labels: { try: 'tls' } }))).stderr).toMatch(/failed calling webhook/);
    } finally {
      await register(webhookConfig({ url: webhookUrl }));
    }
  });
});
