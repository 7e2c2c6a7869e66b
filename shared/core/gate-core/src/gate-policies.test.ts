/**
 * The gate with the live policy watch, against the sandbox API server and a real Redis: the attacks of issue #10
 * points 3, 4 and 6, played through real GatePolicy/ClusterGatePolicy objects. Verdicts are built the way the verifier
 * builds them (one result per governing policy, carrying the policy's identity).
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CommitVerdictJob, PolicyResult } from '@gitops-gate/contracts';
import {
  argoApplicationKind,
  clusterGatePolicyKind,
  createSandboxApiServer,
  demoApplication,
  gatePolicyKind,
  namespaceKind,
  type SandboxApiServer,
} from '@gitops-gate/k8s-sandbox';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import {
  createAuditTrail,
  createImageState,
  createKubeApplicationStore,
  createPolicyWatcher,
  createRedisLock,
} from '@gitops-gate/gate-store';
import { createGate, type Gate } from './gate.js';
import type { ApplicationStore } from './application-store.js';
import type { PolicyWatcher } from './policy-watch.js';

const REPO = 'https://github.com/org/app.git';
const SHA = 'a'.repeat(40);
const silent = createLogger('gate-pol-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const gitsign = { gitsign: [{ identity: 'alice@example.com', issuer: 'https://accounts.google.com' }] };

let redisServer: TestRedis;
let redis: Redis;
let sandbox: SandboxApiServer;
let api: CustomObjectsApi;
let store: ApplicationStore;
let watcher: PolicyWatcher;
let gate: Gate;

const G = (namespace: string) => ({ group: 'gitops-gate.io', version: 'v1alpha1', plural: 'gatepolicies', namespace });
const C = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'clustergatepolicies' };
function gp(name: string, namespace: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name, namespace },
    spec: { repository: 'https://github.com/org/app', branches: ['main'], commits: gitsign, ...spec },
  };
}

/** One result per policy in force that governs the branch, as a verifier holding the published snapshot computes it. */
function verdictFromSnapshot(ok: (name: string) => boolean): CommitVerdictJob {
  const policies: PolicyResult[] = watcher.current().compiled.map((p) => ({
    name: p.name,
    scope: p.scope,
    namespace: p.namespace,
    uid: p.uid,
    generation: p.generation,
    mode: p.mode,
    selector: p.selector,
    ok: ok(p.name),
    code: ok(p.name) ? 'VERIFIED' : 'UNSIGNED',
    reason: ok(p.name) ? undefined : 'commit is not signed',
  }));
  return {
    v: 1,
    kind: 'commit-verdict',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/org/app',
    cloneUrl: REPO,
    repoFullName: 'org/app',
    branch: 'main',
    sha: SHA,
    outcome: policies.every((p) => p.ok) && policies.length > 0 ? 'verified' : 'rejected',
    method: 'ssh',
    code: 'X',
    reasons: [],
    verifiedAt: new Date().toISOString(),
    policies,
    ancestors: [],
    onBranch: true,
    branchHead: SHA,
  };
}

async function settle(): Promise<void> {
  const before = watcher.current().revision;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 30));
    if (watcher.current().revision !== before) break;
  }
  await watcher.resync();
}
const rev = async (ns = 'argocd', name = 'shop') => (await store.get(ns, name)).spec?.source?.targetRevision;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = createRedisConnection(redisServer.url, 'worker');
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.close();
});
beforeEach(async () => {
  sandbox = await createSandboxApiServer({
    kinds: [namespaceKind, argoApplicationKind, gatePolicyKind, clusterGatePolicyKind],
    seed: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } },
      demoApplication({ name: 'shop', namespace: 'argocd', repoURL: REPO, branch: 'main' }),
      demoApplication({ name: 'web', namespace: 'team-a', repoURL: REPO, branch: 'main' }),
    ],
  });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  api = kc.makeApiClient(CustomObjectsApi);
  store = createKubeApplicationStore(kc);
  watcher = createPolicyWatcher({ kc, logger: silent, onChange: () => undefined, backoff: { initialMs: 50, maxMs: 200 } });
  const prefix = `gp-${randomUUID().slice(0, 8)}`;
  gate = createGate({
    images: createImageState(redis, prefix),
    store,
    lock: createRedisLock(redis, prefix),
    audit: createAuditTrail(redis, prefix),
    logger: silent,
    namespaces: [],
    isAncestor: async () => true,
    livePolicies: () => watcher.live(),
    livePolicyRevision: () => watcher.current().revision,
    requestReverify: async () => undefined,
  });
});
afterEach(async () => {
  await watcher.stop();
  await sandbox.close();
});

const outcome = (outs: Awaited<ReturnType<Gate['applyVerdict']>>, app: string) => outs.find((o) => o.app === app)?.action;

describe('namespaces are tenant boundaries (#10.4)', () => {
  it('attacker: an Audit GatePolicy in team-a selecting argocd does not audit-pin an unsigned commit into argocd/shop', async () => {
    await api.createNamespacedCustomObject({
      ...G('team-a'),
      body: gp('yolo', 'team-a', { mode: 'Audit', selector: { namespaces: ['argocd', 'team-a'] } }),
    });
    await watcher.start();
    const outs = await gate.applyVerdict(verdictFromSnapshot(() => false));
    expect(outcome(outs, 'argocd/shop')).toBe('refuse-no-policy');
    expect(await rev()).toBe('main');
    // In its own namespace it audits as designed.
    expect(outcome(outs, 'team-a/web')).toBe('audit-pin');
  });

  it('attacker: an Enforce GatePolicy in team-a trusting a tenant key does not open default-deny argocd/shop', async () => {
    await api.createNamespacedCustomObject({ ...G('team-a'), body: gp('mine', 'team-a', { selector: { names: ['argocd/shop', 'web'] } }) });
    await watcher.start();
    const outs = await gate.applyVerdict(verdictFromSnapshot(() => true));
    expect(outcome(outs, 'argocd/shop')).toBe('refuse-no-policy');
    expect(await rev()).toBe('main');
    expect(outcome(outs, 'team-a/web')).toBe('pin');
  });

  it('a ClusterGatePolicy governs Applications in every namespace', async () => {
    await api.createClusterCustomObject({
      ...C,
      body: { ...gp('platform', ''), kind: 'ClusterGatePolicy', metadata: { name: 'platform' } },
    });
    await watcher.start();
    const outs = await gate.applyVerdict(verdictFromSnapshot(() => true));
    expect([outcome(outs, 'argocd/shop'), outcome(outs, 'team-a/web')]).toEqual(['pin', 'pin']);
  });
});

describe('a verdict counts only under the live policy generation (#10.3)', () => {
  it('attacker: a verdict computed under a policy that was then deleted does not pin', async () => {
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('p', 'argocd') });
    await watcher.start();
    const v = verdictFromSnapshot(() => true);
    await api.deleteNamespacedCustomObject({ ...G('argocd'), name: 'p' });
    await settle();
    expect(outcome(await gate.applyVerdict(v), 'argocd/shop')).toBe('refuse-no-policy');
    expect(await rev()).toBe('main');
  });

  it('attacker: a verdict computed before the policy was narrowed to other Applications or moved to other branches does not pin', async () => {
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('p', 'argocd') });
    await watcher.start();
    const v = verdictFromSnapshot(() => true);
    await api.patchNamespacedCustomObject({ ...G('argocd'), name: 'p', body: { spec: { selector: { names: ['other'] } } } }, merge);
    await settle();
    expect(outcome(await gate.applyVerdict(v), 'argocd/shop')).toBe('refuse-no-policy');
    await api.patchNamespacedCustomObject({ ...G('argocd'), name: 'p', body: { spec: { selector: {}, branches: ['release'] } } }, merge);
    await settle();
    expect(outcome(await gate.applyVerdict(v), 'argocd/shop')).toBe('refuse-no-policy');
    expect(await rev()).toBe('main');
  });

  it('a policy edited (still selecting) asks for verification again; the re-verified verdict pins', async () => {
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('p', 'argocd') });
    await watcher.start();
    const v = verdictFromSnapshot(() => true);
    await api.patchNamespacedCustomObject({ ...G('argocd'), name: 'p', body: { spec: { branches: ['main', 'hotfix'] } } }, merge);
    await settle();
    expect(outcome(await gate.applyVerdict(v), 'argocd/shop')).toBe('deferred-stale-policy');
    expect(outcome(await gate.applyVerdict(verdictFromSnapshot(() => true)), 'argocd/shop')).toBe('pin');
  });

  it('attacker: a commit waiting for its image is not pinned when the image arrives after its policy was deleted', async () => {
    const IMAGE = 'ghcr.io/org/app';
    const app = await store.get('argocd', 'shop');
    await store.patch('argocd', 'shop', {
      metadata: { resourceVersion: app.metadata.resourceVersion, annotations: { 'gitops-gate.io/require-images': IMAGE } },
    });
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('p', 'argocd') });
    await watcher.start();
    expect(outcome(await gate.applyVerdict(verdictFromSnapshot(() => true)), 'argocd/shop')).toBe('wait-images');
    await api.deleteNamespacedCustomObject({ ...G('argocd'), name: 'p' });
    await settle();
    const outs = await gate.applyImageVerdict({
      v: 1,
      kind: 'image-verdict',
      deliveryId: randomUUID(),
      repoUrl: 'https://github.com/org/app',
      image: IMAGE,
      digest: `sha256:${'b'.repeat(64)}`,
      ok: true,
      code: 'VERIFIED',
      sourceCommit: SHA,
      policies: [],
      verifiedAt: new Date().toISOString(),
    });
    expect(outcome(outs, 'argocd/shop')).toBe('refuse-no-policy');
    expect(await rev()).toBe('main');
  });

  it('before policies are listed, verdicts are not decided: the job fails (and is retried), nothing moves', async () => {
    sandbox.injectFault({ method: 'GET', pathIncludes: 'gatepolicies', status: 503, count: Infinity });
    await watcher.start();
    await expect(gate.applyVerdict(verdictFromSnapshot(() => true))).rejects.toThrow(/policies not listed yet/);
    expect(await rev()).toBe('main');
  });
});

describe('fail closed (#10.6)', () => {
  it('attacker: a never-valid Enforce policy refuses even though an Audit policy also selects the Application', async () => {
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('rollout', 'argocd', { mode: 'Audit' }) });
    await api.createNamespacedCustomObject({
      ...G('argocd'),
      body: gp('strict', 'argocd', { commits: { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } }),
    });
    await watcher.start();
    const outs = await gate.applyVerdict(verdictFromSnapshot(() => false));
    expect(outcome(outs, 'argocd/shop')).toBe('refuse-invalid-policy');
    expect(outs.find((o) => o.app === 'argocd/shop')?.reason).toMatch(/argocd\/strict.*identityRegExp/);
    expect(await rev()).toBe('main');
  });

  it('attacker: breaking a valid Enforce policy keeps its last generation in force: Audit still cannot pin an unsigned commit', async () => {
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('rollout', 'argocd', { mode: 'Audit' }) });
    await api.createNamespacedCustomObject({ ...G('argocd'), body: gp('strict', 'argocd') });
    await watcher.start();
    await api.patchNamespacedCustomObject(
      {
        ...G('argocd'),
        name: 'strict',
        body: { spec: { commits: { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } } },
      },
      merge,
    );
    for (
      let i = 0;
      i < 100 &&
      ((await api.getNamespacedCustomObject({ ...G('argocd'), name: 'strict' })) as { status?: { observedGeneration?: number } }).status
        ?.observedGeneration !== 2;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 30));
    }
    const outs = await gate.applyVerdict(verdictFromSnapshot((n) => n !== 'argocd/strict'));
    expect(outcome(outs, 'argocd/shop')).toBe('refuse-unverified');
    expect(await rev()).toBe('main');
  });
});
