import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  argoApplicationKind,
  clusterGatePolicyKind,
  createSandboxApiServer,
  gatePolicyKind,
  type SandboxApiServer,
} from '@gitops-gate/k8s-sandbox';
import { createLogger } from '@gitops-gate/telemetry';
import type { Application, PolicySet, PolicyWatcher } from '@gitops-gate/gate-core';
import { createPolicyWatcher } from './policy-watcher.js';

const silent = createLogger('pw-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const G = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'gatepolicies', namespace: 'argocd' };

function policy(name: string, commits: Record<string, unknown>, mode = 'Enforce') {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name, namespace: 'argocd' },
    spec: { mode, repository: 'https://github.com/org/app', branches: ['main'], commits },
  };
}
const gitsign = { gitsign: [{ identity: 'alice@example.com', issuer: 'https://accounts.google.com' }] };

let sandbox: SandboxApiServer;
let api: CustomObjectsApi;
let watcher: PolicyWatcher;
let sets: PolicySet[];
let kc: KubeConfig;
let apps: Application[];

async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
async function readyCondition(name: string) {
  const obj = (await api.getNamespacedCustomObject({ ...G, name })) as {
    status?: { conditions?: { status: string; message: string }[]; observedGeneration?: number };
  };
  return obj.status;
}

/** Polls until the gate has written a Ready condition on the policy. */
async function waitStatus(name: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await readyCondition(name);
    if (s?.conditions?.[0] || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeEach(async () => {
  sandbox = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind, clusterGatePolicyKind] });
  kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  api = kc.makeApiClient(CustomObjectsApi);
  sets = [];
  apps = [];
  watcher = createPolicyWatcher({
    kc,
    logger: silent,
    onChange: (s) => void sets.push(s),
    applications: async () => apps,
    backoff: { initialMs: 50, maxMs: 400 },
  });
});
afterEach(async () => {
  await watcher.stop();
  await sandbox.close();
});

describe('GatePolicy watch', () => {
  it('applies a created policy without a restart and marks it Ready', async () => {
    await watcher.start();
    await api.createNamespacedCustomObject({ ...G, body: policy('p1', gitsign) });
    await until(() => watcher.current().compiled.some((p) => p.name === 'argocd/p1'));
    expect(watcher.live()[0]).toMatchObject({ name: 'argocd/p1', mode: 'Enforce', generation: 1 });
    expect(watcher.live()[0]?.governs('git@github.com:org/app.git', 'main')).toBe(true);
    expect(watcher.live()[0]?.governs('https://github.com/org/app', 'dev')).toBe(false);
    const s = await waitStatus('p1');
    expect(s?.conditions?.[0]).toMatchObject({ status: 'True' });
    expect(s?.observedGeneration).toBe(1);
  });

  it('an invalid policy is not applied and its status names the problem', async () => {
    await watcher.start();
    // Anchored, so the CRD (and the sandbox, like a real API server) accepts it; only the gate finds it invalid.
    await api.createNamespacedCustomObject({
      ...G,
      body: policy('bad', { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] }),
    });
    const s = await waitStatus('bad');
    expect(s?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'InvalidRefusing' });
    expect(s?.conditions?.[0]?.message).toMatch(/identityRegExp is not a valid regular expression/);
    expect(watcher.current().compiled).toEqual([]);
    // Never valid, Enforce: published to the gate as a policy that refuses what it selects, not to the verifiers.
    expect(watcher.live()).toMatchObject([{ name: 'argocd/bad', mode: 'Enforce', broken: expect.stringMatching(/identityRegExp/) }]);
    expect(watcher.current().objects).toEqual([]);
  });

  it('edits bump the generation live; deletes remove the policy', async () => {
    await api.createNamespacedCustomObject({ ...G, body: policy('p2', gitsign) });
    await watcher.start();
    expect(watcher.current().compiled.map((p) => p.name)).toEqual(['argocd/p2']);
    await api.patchNamespacedCustomObject(
      { ...G, name: 'p2', body: { spec: { mode: 'Audit' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await until(() => watcher.current().compiled[0]?.mode === 'Audit');
    expect(watcher.current().compiled[0]?.generation).toBe(2);
    await api.deleteNamespacedCustomObject({ ...G, name: 'p2' });
    await until(() => watcher.current().compiled.length === 0);
    expect(sets.length).toBeGreaterThanOrEqual(3);
  });

  it('survives watch expiry (410 Gone → relist) and sees changes made meanwhile', async () => {
    await watcher.start();
    sandbox.injectFault({ method: 'GET', pathIncludes: 'watch', status: 410, count: 1 });
    await api.createNamespacedCustomObject({ ...G, body: policy('p3', gitsign) });
    await until(() => watcher.current().compiled.some((p) => p.name === 'argocd/p3'), 20_000);
  });
});

const C = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'clustergatepolicies' };
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const optedIn = (name: string, namespace: string): Application => ({
  metadata: { name, namespace, annotations: { 'gitops-gate.io/branch': 'main' } },
  spec: { source: { repoURL: 'https://github.com/org/app.git', targetRevision: 'main' } },
});

describe('fail closed: an Enforce policy that becomes invalid keeps its last valid generation', () => {
  it('attacker: breaking a valid Enforce policy does not drop it; verifiers keep the same last valid object', async () => {
    await api.createNamespacedCustomObject({ ...G, body: policy('strict', gitsign) });
    await watcher.start();
    expect(watcher.live()).toMatchObject([{ name: 'argocd/strict', generation: 1, mode: 'Enforce' }]);
    // A namespace editor (or a typo) makes it invalid: generation 2 does not compile.
    await api.patchNamespacedCustomObject(
      {
        ...G,
        name: 'strict',
        body: { spec: { commits: { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } } },
      },
      merge,
    );
    await until(async () => (await readyCondition('strict'))?.observedGeneration === 2);
    const s = await readyCondition('strict');
    expect(s?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'InvalidLastValidInForce' });
    expect(s?.conditions?.[0]?.message).toMatch(/identityRegExp.*generation 1 \(the last valid one\) stays in force/);
    expect(watcher.live()).toMatchObject([{ name: 'argocd/strict', generation: 1, mode: 'Enforce' }]);
    expect(watcher.live()[0]?.broken).toBeUndefined();
    expect(watcher.current().objects).toMatchObject([{ kind: 'GatePolicy', metadata: { name: 'strict', generation: 1 } }]);
    // Fixing it moves on to the new generation.
    await api.patchNamespacedCustomObject({ ...G, name: 'strict', body: { spec: { commits: gitsign } } }, merge);
    await until(() => watcher.live()[0]?.generation === 3);
  });

  it('an invalid Audit policy is not applied and refuses nothing', async () => {
    await api.createNamespacedCustomObject({
      ...G,
      body: policy('a', { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] }, 'Audit'),
    });
    await watcher.start();
    const s = await waitStatus('a');
    expect(s?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(watcher.live()).toEqual([]);
  });
});

describe('ClusterGatePolicy and status.selectedApplications', () => {
  it('watches ClusterGatePolicies (scope Cluster) next to GatePolicies (scope Namespaced, own namespace only)', async () => {
    apps = [optedIn('shop', 'argocd'), optedIn('web', 'team-a'), { metadata: { name: 'not-opted-in', namespace: 'argocd' } }];
    await api.createNamespacedCustomObject({
      ...G,
      body: { ...policy('ns', gitsign), spec: { ...policy('ns', gitsign).spec, selector: { namespaces: ['team-a'] } } },
    });
    await api.createClusterCustomObject({
      ...C,
      body: { ...policy('platform', gitsign), kind: 'ClusterGatePolicy', metadata: { name: 'platform' } },
    });
    await watcher.start();
    expect(
      watcher
        .live()
        .map((l) => `${l.scope}:${l.name}:${l.namespace ?? '-'}`)
        .sort(),
    ).toEqual(['Cluster:platform:-', 'Namespaced:argocd/ns:argocd']);
    expect(
      watcher
        .current()
        .objects.map((o) => (o as { kind: string }).kind)
        .sort(),
    ).toEqual(['ClusterGatePolicy', 'GatePolicy']);
    const cluster = await until(async () => {
      const o = (await api.getClusterCustomObject({ ...C, name: 'platform' })) as {
        status?: { selectedApplications?: { count: number; names: string[] }; conditions?: { status: string }[] };
      };
      return o.status?.selectedApplications ? o.status : undefined;
    });
    expect(cluster.conditions?.[0]?.status).toBe('True');
    expect(cluster.selectedApplications).toEqual({ count: 2, names: ['argocd/shop', 'team-a/web'] });
    // The namespaced policy asked for team-a, but selects only in its own namespace: nothing there asks for team-a.
    const ns = (await readyCondition('ns')) as { selectedApplications?: unknown } | undefined;
    expect(ns?.selectedApplications).toEqual({ count: 0, names: [] });
  });

  it('status is written only when it changes (no write loop)', async () => {
    apps = [optedIn('shop', 'argocd')];
    await api.createNamespacedCustomObject({ ...G, body: policy('quiet', gitsign) });
    await watcher.start();
    await waitStatus('quiet');
    const patches = () => sandbox.requests().filter((r) => r.method === 'PATCH' && r.path.includes('/status')).length;
    await new Promise((r) => setTimeout(r, 300));
    const before = patches();
    await watcher.resync();
    await watcher.resync();
    await new Promise((r) => setTimeout(r, 300));
    expect(patches()).toBe(before);
    apps = [optedIn('shop', 'argocd'), optedIn('cart', 'argocd')];
    await watcher.resync();
    await until(
      async () =>
        ((await readyCondition('quiet')) as { selectedApplications?: { count: number } } | undefined)?.selectedApplications?.count === 2,
    );
  });
});

describe('list errors are detected, reported and retried with backoff (#18.4)', () => {
  it('a missing CRD is named in health() and the other kind still works; installing it later is picked up', async () => {
    await sandbox.close();
    sandbox = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind] });
    kc.loadFromString(sandbox.kubeconfigYaml());
    api = kc.makeApiClient(CustomObjectsApi);
    await api.createNamespacedCustomObject({ ...G, body: policy('p', gitsign) });
    watcher = createPolicyWatcher({ kc, logger: silent, onChange: (s) => void sets.push(s), backoff: { initialMs: 50, maxMs: 200 } });
    await watcher.start();
    expect(watcher.health()).toMatchObject({
      synced: true,
      ok: false,
      problems: [expect.stringMatching(/ClusterGatePolicy CRD not installed \(404/)],
    });
    expect(watcher.live().map((l) => l.name)).toEqual(['argocd/p']);
    sandbox.registerKind(clusterGatePolicyKind);
    await until(() => watcher.health().ok, 5_000);
  });

  it('an API server that fails every list: not synced (live() throws), problem reported, retries back off instead of ~1/s forever', async () => {
    sandbox.injectFault({ method: 'GET', pathIncludes: 'gatepolicies', status: 500, count: 1_000 });
    const lists = () => sandbox.requests().filter((r) => r.method === 'GET' && r.path.includes('gatepolicies')).length;
    const t0 = lists();
    await watcher.start();
    expect(watcher.health()).toMatchObject({ synced: false, ok: false });
    expect(watcher.health().problems.join('\n')).toMatch(/cannot list\/watch gatepolicies.*500/);
    expect(() => watcher.live()).toThrow(/policies not listed yet/);
    await new Promise((r) => setTimeout(r, 1_500));
    // Backoff 50, 100, 200, 400, 400…ms: about 6 attempts per kind in 1.5 s, not one per informer tick.
    expect(lists() - t0).toBeLessThanOrEqual(2 * 8);
    sandbox.clearFaults();
    await until(() => watcher.health().ok, 5_000);
    expect(watcher.live()).toEqual([]);
  });

  it('403 (RBAC) is named as such', async () => {
    sandbox.deny({ resource: 'clustergatepolicies', verb: 'list' });
    await watcher.start();
    expect(watcher.health().problems).toEqual([expect.stringMatching(/forbidden to list\/watch clustergatepolicies.*ClusterRoleBinding/)]);
  });
});

describe('last valid generation across a gate restart', () => {
  it('an Enforce policy invalid at start-up keeps the valid generation from the previous snapshot (same uid, older)', async () => {
    await api.createNamespacedCustomObject({ ...G, body: policy('strict', gitsign) });
    const valid = await api.getNamespacedCustomObject({ ...G, name: 'strict' });
    await api.patchNamespacedCustomObject(
      {
        ...G,
        name: 'strict',
        body: { spec: { commits: { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } } },
      },
      merge,
    );
    // Another object's snapshot entry (other uid) must not stand in for it.
    const impostor = { ...(valid as object), metadata: { ...(valid as { metadata: object }).metadata, uid: 'someone-else' } };
    watcher = createPolicyWatcher({ kc, logger: silent, onChange: () => undefined, previous: [valid, impostor] });
    await watcher.start();
    expect(watcher.live()).toMatchObject([{ name: 'argocd/strict', generation: 1, mode: 'Enforce' }]);
    expect(watcher.live()[0]?.broken).toBeUndefined();
    expect((await waitStatus('strict'))?.conditions?.[0]).toMatchObject({ reason: 'InvalidLastValidInForce' });
  });

  it('without it, the same policy refuses (never valid in this process)', async () => {
    await api.createNamespacedCustomObject({ ...G, body: policy('strict', gitsign) });
    await api.patchNamespacedCustomObject(
      {
        ...G,
        name: 'strict',
        body: { spec: { commits: { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } } },
      },
      merge,
    );
    await watcher.start();
    expect(watcher.live()).toMatchObject([{ name: 'argocd/strict', broken: expect.any(String) }]);
  });
});
