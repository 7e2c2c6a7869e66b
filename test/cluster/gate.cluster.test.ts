/**
 * Opt-in: the gate against a real Kubernetes API server (kind, k3d or a dev cluster). How to set one up: README.md,
 * "The real-cluster suite". In short:
 *   KUBECONFIG=~/.kube/config npm run test:cluster
 * Needs Argo CD's Application CRD and the gitops-gate CRDs (deploy/base/crds); the Argo CD test also needs Argo CD's
 * application controller running. Each part that lacks what it needs is skipped with the reason in its name.
 * Creates objects named gitops-gate-test-* in GITOPS_GATE_TEST_NAMESPACE (default argocd) and deletes them after.
 * GITOPS_GATE_TEST_GATE_KUBECONFIG: the identity the gate under test writes with (the gate's ServiceAccount, so the
 * pin-guard admission policy admits its pins); default KUBECONFIG.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { ApiextensionsV1Api, AppsV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '@gitops-gate/policy';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { createGate, KubeError, type Application, type ApplicationStore } from '@gitops-gate/gate-core';
import { createAuditTrail, createKubeApplicationStore, createRedisLock } from '@gitops-gate/gate-store';
import { createGitMirror } from '@gitops-gate/git';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, generateSshKey, startTestRedis, type TestRedis } from '@gitops-gate/testing';

const KUBECONFIG = process.env.KUBECONFIG;
const NS = process.env.GITOPS_GATE_TEST_NAMESPACE ?? 'argocd';
const ARGOCD_NS = process.env.GITOPS_GATE_TEST_ARGOCD_NAMESPACE ?? 'argocd';
const REPO = 'https://github.com/gitops-gate/cluster-test.git';
const FIXTURES = new URL('../../../shared/fixtures/git-commits/', import.meta.url).pathname;
const silent = createLogger('cluster-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const HOW = 'see README.md "The real-cluster suite"';

/** What the cluster has, found once before the tests are collected, so every skip can say why. */
async function probe(): Promise<{ argoCrd?: string; policyCrds?: string; controller?: string }> {
  if (!KUBECONFIG) return {};
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  const crds = kc.makeApiClient(ApiextensionsV1Api);
  const has = async (name: string) =>
    crds.readCustomResourceDefinition({ name }).then(
      () => true,
      () => false,
    );
  const out: { argoCrd?: string; policyCrds?: string; controller?: string } = {};
  if (!(await has('applications.argoproj.io'))) out.argoCrd = `Argo CD's Application CRD is not installed (install Argo CD; ${HOW})`;
  const missing = [];
  for (const n of ['gatepolicies.gitops-gate.io', 'clustergatepolicies.gitops-gate.io']) if (!(await has(n))) missing.push(n);
  if (missing.length) out.policyCrds = `CRD ${missing.join(', ')} not installed (kubectl apply -f deploy/base/crds/; ${HOW})`;
  const sts = await kc
    .makeApiClient(AppsV1Api)
    .readNamespacedStatefulSet({ name: 'argocd-application-controller', namespace: ARGOCD_NS })
    .catch(() => undefined);
  if (!sts) out.controller = `no argocd-application-controller StatefulSet in namespace ${ARGOCD_NS} (install Argo CD; ${HOW})`;
  else if ((sts.status?.readyReplicas ?? 0) < 1) out.controller = `argocd-application-controller in ${ARGOCD_NS} has no ready replica`;
  return out;
}
const missing = await probe();

if (!KUBECONFIG) {
  console.warn(
    `test:cluster: SKIPPED — KUBECONFIG is not set. Run KUBECONFIG=<file> npm run test:cluster against a cluster with Argo CD and the gitops-gate CRDs; ${HOW}.`,
  );
  it.skip(`SKIPPED: KUBECONFIG is not set (${HOW})`, () => undefined);
}

describe.runIf(Boolean(KUBECONFIG))('gate against a real cluster', () => {
  let redisServer: TestRedis;
  let redis: Redis;
  let store: ApplicationStore;
  let gateStore: ApplicationStore;
  let api: CustomObjectsApi;
  const created: { plural: string; name: string; namespaced: boolean; group: string }[] = [];
  const repo = createTestRepo();
  const suffix = randomUUID().slice(0, 8);

  const verdict = (sha: string): CommitVerdictJob => ({
    v: 1,
    kind: 'commit-verdict',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/gitops-gate/cluster-test',
    cloneUrl: REPO,
    repoFullName: 'gitops-gate/cluster-test',
    branch: 'main',
    sha,
    outcome: 'verified',
    method: 'ssh',
    signer: { identity: 'dev@example.com' },
    code: 'VERIFIED',
    reasons: [],
    rule: 'cluster-test',
    verifiedAt: new Date().toISOString(),
    ancestors: [],
    onBranch: true,
    branchHead: sha,
    policies: [{ name: 'cluster-test', scope: 'File', mode: 'Enforce', selector: { namespaces: [NS] }, ok: true, code: 'VERIFIED' }],
  });
  const gate = (over: Partial<Parameters<typeof createGate>[0]> = {}) =>
    createGate({
      store: gateStore,
      lock: createRedisLock(redis, `cluster-test-${suffix}`),
      audit: createAuditTrail(redis, `cluster-test-${suffix}`),
      logger: silent,
      namespaces: [NS],
      isAncestor: (url, a, d) =>
        createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-cl-')), urlRewrites: { [REPO]: repo.url } }).isAncestor(url, a, d),
      ...over,
    });
  async function createApp(name: string): Promise<void> {
    await api.createNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'applications',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name, namespace: NS, annotations: { 'gitops-gate.io/branch': 'main' } },
        spec: {
          project: 'default',
          source: { repoURL: REPO, path: '.', targetRevision: 'main' },
          destination: { server: 'https://kubernetes.default.svc', namespace: 'default' },
        },
      },
    });
    created.push({ group: 'argoproj.io', plural: 'applications', name, namespaced: true });
  }

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = createRedisConnection(redisServer.url, 'worker');
    const kc = new KubeConfig();
    kc.loadFromFile(KUBECONFIG!);
    store = createKubeApplicationStore(kc);
    const gkc = new KubeConfig();
    gkc.loadFromFile(process.env.GITOPS_GATE_TEST_GATE_KUBECONFIG ?? KUBECONFIG!);
    gateStore = createKubeApplicationStore(gkc);
    api = kc.makeApiClient(CustomObjectsApi);
  });
  afterAll(async () => {
    for (const o of created.reverse()) {
      const version = o.group === 'argoproj.io' ? 'v1alpha1' : 'v1alpha1';
      await (
        o.namespaced
          ? api.deleteNamespacedCustomObject({ group: o.group, version, namespace: NS, plural: o.plural, name: o.name })
          : api.deleteClusterCustomObject({ group: o.group, version, plural: o.plural, name: o.name })
      ).catch(() => undefined);
    }
    redis?.disconnect();
    await redisServer?.close();
  });

  describe.skipIf(Boolean(missing.argoCrd))(`pins on the real API server${missing.argoCrd ? ` — SKIPPED: ${missing.argoCrd}` : ''}`, () => {
    const name = `gitops-gate-test-${suffix}`;
    beforeAll(() => createApp(name));

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

    it('a stale resourceVersion gets 409 from the real API server, as a merge patch and as the JSON-patch pin', async () => {
      const app = await store.get(NS, name);
      await store.patch(NS, name, {
        metadata: { resourceVersion: app.metadata.resourceVersion, annotations: { 'gitops-gate.io/test': '1' } },
      });
      await expect(
        store.patch(NS, name, { metadata: { resourceVersion: app.metadata.resourceVersion, annotations: { 'gitops-gate.io/test': '2' } } }),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(
        store.patch(NS, name, [
          { op: 'replace', path: '/metadata/resourceVersion', value: app.metadata.resourceVersion! },
          { op: 'add', path: '/metadata/annotations/gitops-gate.io~1test', value: '3' },
        ]),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
    });

    it('a failed JSON-patch test op is 422 (not 409) on the real API server, and an absent member tests equal to null', async () => {
      const app = await store.get(NS, name);
      const rv = app.metadata.resourceVersion!;
      const err = await store
        .patch(NS, name, [
          { op: 'test', path: '/spec/source/repoURL', value: 'https://example.com/other.git' },
          { op: 'replace', path: '/metadata/resourceVersion', value: rv },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeError);
      expect(err).toMatchObject({ code: 'INVALID', status: 422 });
      // The pin patch leaves out a test for an absent targetRevision; this pins down the reading it relies on.
      await store.patch(NS, name, [
        { op: 'test', path: '/metadata/annotations/gitops-gate.io~1absent', value: null } as never,
        { op: 'replace', path: '/metadata/resourceVersion', value: rv },
      ]);
    });

    it("an unconditional status write (Argo CD's) between the gate's read and write is kept and costs one retry", async () => {
      // Its own Application: the one above is pinned to a commit the rewrite left behind.
      const racer = `${name}-race`;
      await createApp(racer);
      const c = repo.commit('c');
      repo.push();
      let conflicts = 0;
      let done = false;
      const racing: ApplicationStore = {
        ...gateStore,
        async patch(ns, n, body) {
          if (!done && n === racer) {
            done = true;
            await store.patch(ns, n, { status: { sync: { status: 'OutOfSync' }, health: { status: 'Progressing' } } });
          }
          return gateStore.patch(ns, n, body);
        },
      };
      const out = await gate({ store: racing, onConflict: () => (conflicts += 1) }).applyVerdict(verdict(c));
      expect(out.find((o) => o.app === `${NS}/${racer}`)?.action).toBe('pin');
      expect(conflicts).toBe(1);
      const app = await store.get(NS, racer);
      expect(app.spec?.source?.targetRevision).toBe(c);
      // Argo CD's controller may have written status since; the field our racer wrote exists either way.
      expect((app['status'] as { health?: unknown } | undefined)?.health).toBeDefined();
    });
  });

  describe.skipIf(Boolean(missing.policyCrds))(
    `GatePolicy CRD round trip${missing.policyCrds ? ` — SKIPPED: ${missing.policyCrds}` : ''}`,
    () => {
      /** A spec with every field the policy model has, each set away from its default, so pruning or defaulting shows. */
      function fullSpec(): Record<string, unknown> {
        const key = generateSshKey(mkdtempSync(join(tmpdir(), 'gg-cl-ssh-')));
        return {
          mode: 'Audit',
          selector: { matchLabels: { env: 'prod' }, names: ['shop', `${NS}/shop`], namespaces: [NS] },
          repository: 'https://github.com/org/shop',
          branches: ['main', 'release/*'],
          commits: {
            requiredSigners: 1,
            gitsign: [
              { identity: 'alice@example.com', issuer: 'https://accounts.google.com' },
              {
                identityRegExp: '^https://github\\.com/org/shop/\\.github/workflows/.*$',
                issuer: 'https://token.actions.githubusercontent.com',
              },
            ],
            ssh: { allowedSigners: `${key.allowedSignersLine('alice@example.com')}\n` },
            gpg: [
              {
                fingerprint: '5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23',
                publicKey: readFileSync(join(FIXTURES, 'pgp/github-web-flow-2017.asc'), 'utf8'),
                validFrom: '2017-08-16T00:00:00Z',
                validUntil: '2030-01-01T00:00:00Z',
                revoked: true,
              },
            ],
          },
          images: [
            {
              repository: 'ghcr.io/org/shop',
              keyless: [
                {
                  identity: 'https://github.com/org/shop/.github/workflows/release.yml@refs/heads/main',
                  issuer: 'https://token.actions.githubusercontent.com',
                },
              ],
              keys: [
                {
                  publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n',
                  validFrom: '2024-01-01T00:00:00Z',
                  validUntil: '2030-01-01T00:00:00Z',
                  revoked: true,
                },
              ],
              requireProvenance: false,
            },
          ],
        };
      }

      for (const kind of ['GatePolicy', 'ClusterGatePolicy'] as const) {
        it(`${kind}: every field survives the real API server, and the parser reads back what was written`, async () => {
          const namespaced = kind === 'GatePolicy';
          const plural = namespaced ? 'gatepolicies' : 'clustergatepolicies';
          const name = `gitops-gate-test-${suffix}`;
          const spec = fullSpec();
          const body = { apiVersion: 'gitops-gate.io/v1alpha1', kind, metadata: { name, ...(namespaced ? { namespace: NS } : {}) }, spec };
          const group = 'gitops-gate.io';
          if (namespaced) await api.createNamespacedCustomObject({ group, version: 'v1alpha1', namespace: NS, plural, body });
          else await api.createClusterCustomObject({ group, version: 'v1alpha1', plural, body });
          created.push({ group, plural, name, namespaced });
          const back = (
            namespaced
              ? await api.getNamespacedCustomObject({ group, version: 'v1alpha1', namespace: NS, plural, name })
              : await api.getClusterCustomObject({ group, version: 'v1alpha1', plural, name })
          ) as { metadata: { generation?: number }; spec: unknown };
          // Field by field: nothing pruned, nothing defaulted differently, nothing rewritten (the CRD and the model agree).
          expect(back.spec).toEqual(spec);
          // And the parser compiles what the API server stored into the same policy as what was sent. The parser takes
          // the GatePolicy shape; a ClusterGatePolicy has the same spec (deploy/base/crds/clustergatepolicy.yaml).
          const asGatePolicy = (o: { spec: unknown }) => ({
            apiVersion: 'gitops-gate.io/v1alpha1',
            kind: 'GatePolicy',
            metadata: { name, namespace: namespaced ? NS : undefined },
            spec: o.spec,
          });
          const sent = await compilePolicy(asGatePolicy(body), 'sent');
          const stored = await compilePolicy(asGatePolicy(back), 'stored');
          expect(stored.spec).toEqual(sent.spec);
          expect(stored.commit.fingerprint).toBe(sent.commit.fingerprint);
        });
      }
    },
  );

  const argoMissing = missing.argoCrd ?? missing.controller;
  describe.skipIf(Boolean(argoMissing))(
    `with Argo CD's application controller reconciling the same Application${argoMissing ? ` — SKIPPED: ${argoMissing}` : ''}`,
    () => {
      it('every pin lands while the controller keeps writing the object (hard refreshes requested throughout)', async () => {
        const name = `gitops-gate-test-argo-${suffix}`;
        await createApp(name);
        // Keep the controller busy on this Application: each refresh request is an annotation the controller removes
        // after it reconciled, writing status (Argo CD's Application CRD has no status subresource: a whole-object write).
        let refreshes = 0;
        let stop = false;
        const refresher = (async () => {
          while (!stop) {
            await store.patch(NS, name, { metadata: { annotations: { 'argocd.argoproj.io/refresh': 'hard' } } }).then(
              () => (refreshes += 1),
              () => undefined,
            );
            await sleep(300);
          }
        })();
        let conflicts = 0;
        const shas: string[] = [];
        try {
          for (let i = 0; i < 6; i++) {
            const sha = repo.commit(`argo-${i}`);
            repo.push();
            shas.push(sha);
            const out = await gate({ onConflict: () => (conflicts += 1) }).applyVerdict(verdict(sha));
            expect(out.find((o) => o.app === `${NS}/${name}`)?.action).toBe('pin');
            await sleep(1_000);
          }
        } finally {
          stop = true;
          await refresher;
        }
        // Give the controller a last reconcile, then check that nothing it wrote put an older revision back.
        await sleep(5_000);
        const app = (await store.get(NS, name)) as Application & { status?: { reconciledAt?: string; conditions?: unknown[] } };
        expect(app.spec?.source?.targetRevision).toBe(shas.at(-1));
        expect(app.metadata.annotations?.['gitops-gate.io/verified-sha']).toBe(shas.at(-1));
        // The controller really was there: it wrote status (reconciledAt, or a ComparisonError condition when it cannot
        // reach the test repository, which is expected: the revisions are local commits).
        expect(app.status?.reconciledAt ?? app.status?.conditions).toBeDefined();
        const pending = app.metadata.annotations?.['argocd.argoproj.io/refresh'];
        console.log(
          `cluster: ${shas.length} pins with Argo CD reconciling, ${refreshes} refresh requests, ${conflicts} conflicts, last refresh ${pending ? 'still pending' : 'consumed by the controller'}`,
        );
      }, 120_000);
    },
  );
});
