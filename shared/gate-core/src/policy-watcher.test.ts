import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { argoApplicationKind, createSandboxApiServer, gatePolicyKind, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createLogger } from '@gitops-gate/telemetry';
import { createPolicyWatcher, type PolicySet, type PolicyWatcher } from './policy-watcher.js';

const silent = createLogger('pw-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const G = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'gatepolicies', namespace: 'argocd' };

function policy(name: string, commits: Record<string, unknown>, mode = 'Enforce') {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1', kind: 'GatePolicy', metadata: { name, namespace: 'argocd' },
    spec: { mode, repository: 'https://github.com/org/app', branches: ['main'], commits },
  };
}
const gitsign = { gitsign: [{ identity: 'alice@example.com', issuer: 'https://accounts.google.com' }] };

let sandbox: SandboxApiServer;
let api: CustomObjectsApi;
let watcher: PolicyWatcher;
let sets: PolicySet[];

async function until<T>(fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
async function readyCondition(name: string) {
  const obj = (await api.getNamespacedCustomObject({ ...G, name })) as { status?: { conditions?: { status: string; message: string }[]; observedGeneration?: number } };
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
  sandbox = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind] });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  api = kc.makeApiClient(CustomObjectsApi);
  sets = [];
  watcher = createPolicyWatcher({ kc, logger: silent, onChange: (s) => void sets.push(s) });
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
    await api.createNamespacedCustomObject({ ...G, body: policy('bad', { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] }) });
    const s = await waitStatus('bad');
    expect(s?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(s?.conditions?.[0]?.message).toMatch(/identityRegExp is not a valid regular expression/);
    expect(watcher.current().compiled).toEqual([]);
  });

  it('edits bump the generation live; deletes remove the policy', async () => {
    await api.createNamespacedCustomObject({ ...G, body: policy('p2', gitsign) });
    await watcher.start();
    expect(watcher.current().compiled.map((p) => p.name)).toEqual(['argocd/p2']);
    await api.patchNamespacedCustomObject({ ...G, name: 'p2', body: { spec: { mode: 'Audit' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
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
