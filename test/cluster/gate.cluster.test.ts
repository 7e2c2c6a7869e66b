/**
 * Opt-in: the gate's rules against a real Kubernetes cluster with Argo CD's Application CRD installed.
 *   KUBECONFIG=~/.kube/config npm run test:cluster
 * Creates Applications named gitops-gate-test-* in GITOPS_GATE_TEST_NAMESPACE (default argocd) and deletes them after.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { createAuditTrail, createGate, createKubeApplicationStore, createRedisLock, type ApplicationStore } from '@gitops-gate/gate-core';
import { createGitMirror } from '@gitops-gate/git';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, startTestRedis, type TestRedis } from '@gitops-gate/testing';

const NS = process.env.GITOPS_GATE_TEST_NAMESPACE ?? 'argocd';
const REPO = 'https://github.com/gitops-gate/cluster-test.git';
const silent = createLogger('cluster-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));

describe.runIf(Boolean(process.env.KUBECONFIG))('gate against a real cluster', () => {
  let redisServer: TestRedis;
  let redis: Redis;
  let store: ApplicationStore;
  let api: CustomObjectsApi;
  const name = `gitops-gate-test-${randomUUID().slice(0, 8)}`;
  const repo = createTestRepo();

  const verdict = (sha: string): CommitVerdictJob => ({
    v: 1, kind: 'commit-verdict', deliveryId: randomUUID(), repoUrl: 'https://github.com/gitops-gate/cluster-test', cloneUrl: REPO,
    repoFullName: 'gitops-gate/cluster-test', branch: 'main', sha, outcome: 'verified', method: 'ssh', signer: { identity: 'dev@example.com' },
    code: 'VERIFIED', reasons: [], rule: 'cluster-test', verifiedAt: new Date().toISOString(),
  });
  const gate = () =>
    createGate({
      store,
      lock: createRedisLock(redis, 'cluster-test'),
      audit: createAuditTrail(redis, 'cluster-test'),
      logger: silent,
      namespaces: [NS],
      isAncestor: (url, a, d) => createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-cl-')), urlRewrites: { [REPO]: repo.url } }).isAncestor(url, a, d),
    });

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = createRedisConnection(redisServer.url, 'worker');
    const kc = new KubeConfig();
    kc.loadFromFile(process.env.KUBECONFIG!);
    store = createKubeApplicationStore(kc);
    api = kc.makeApiClient(CustomObjectsApi);
    await api.createNamespacedCustomObject({
      group: 'argoproj.io', version: 'v1alpha1', namespace: NS, plural: 'applications',
      body: {
        apiVersion: 'argoproj.io/v1alpha1', kind: 'Application',
        metadata: { name, namespace: NS, annotations: { 'gitops-gate.io/branch': 'main' } },
        spec: { project: 'default', source: { repoURL: REPO, path: '.', targetRevision: 'main' }, destination: { server: 'https://kubernetes.default.svc', namespace: 'default' } },
      },
    });
  });
  afterAll(async () => {
    await api?.deleteNamespacedCustomObject({ group: 'argoproj.io', version: 'v1alpha1', namespace: NS, plural: 'applications', name }).catch(() => undefined);
    redis?.disconnect();
    await redisServer?.close();
  });

  it('pins, moves forward, never backwards, refuses rewrites', async () => {
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    expect((await gate().applyVerdict(verdict(a)))[0]?.action).toBe('pin');
    expect((await gate().applyVerdict(verdict(b)))[0]?.action).toBe('pin');
    expect((await gate().applyVerdict(verdict(a)))[0]?.action).toBe('skip-older');
    repo.git('reset', '--hard', a);
    const x = repo.commit('rewrite');
    repo.push('main', true);
    expect((await gate().applyVerdict(verdict(x)))[0]?.action).toBe('refuse-rewrite');
    expect((await store.get(NS, name)).spec?.source?.targetRevision).toBe(b);
  });

  it('a stale resourceVersion gets 409 from the real API server', async () => {
    const app = await store.get(NS, name);
    await store.patch(NS, name, { metadata: { resourceVersion: app.metadata.resourceVersion, annotations: { 'gitops-gate.io/test': '1' } } });
    await expect(store.patch(NS, name, { metadata: { resourceVersion: app.metadata.resourceVersion, annotations: { 'gitops-gate.io/test': '2' } } })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
