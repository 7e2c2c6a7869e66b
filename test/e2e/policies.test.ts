/**
 * Policies as Kubernetes objects, end to end: GatePolicy objects created, edited and deleted through the API change
 * the gate's decisions live (no restart), default deny holds, and Audit mode pins while recording what Enforce would do.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAppReader,
  DEMO_APP,
  gateUrlOf,
  sendPush,
  waitForDecision,
  type DemoFixture,
  type Stack,
  startDemoStack,
  type DemoStack,
} from '@gitops-gate/local-stack';

const G = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'gatepolicies', namespace: DEMO_APP.namespace };
let demo: DemoStack | undefined;
let stack: Stack;
let fx: DemoFixture;
let api: CustomObjectsApi;
let gateUrl: string;
let readApp: ReturnType<typeof createAppReader>;
let head: string | undefined;

async function push(signed: boolean): Promise<{ sha: string; action: string; reason: string }> {
  const sha = fx.repo.commit(`change ${randomUUID().slice(0, 6)}`, signed ? { signWith: fx.key } : {});
  fx.repo.push();
  const res = await sendPush(stack, sha, head);
  expect(res.status).toBe(202);
  head = sha;
  const d = await waitForDecision(gateUrl, sha, { timeoutMs: 30_000 });
  return { sha, action: d.action, reason: d.reason };
}

async function policyReady(name: string, namespace = G.namespace): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const obj = (await api.getNamespacedCustomObject({ ...G, namespace, name })) as {
      metadata: { generation: number };
      status?: { observedGeneration?: number };
    };
    if (obj.status?.observedGeneration === obj.metadata.generation) return;
    await sleep(25);
  }
  throw new Error(`policy ${name} not observed by the gate`);
}

beforeAll(async () => {
  demo = await startDemoStack({
    name: 'pol',
    withFixture: (fx) => ({
      seed: [fx.application],
    }),
  });
  ({ stack, fx } = demo);
  const kc = new KubeConfig();
  kc.loadFromFile(stack.kubeconfig);
  api = kc.makeApiClient(CustomObjectsApi);
  gateUrl = gateUrlOf(stack);
  readApp = createAppReader(stack.kubeconfig);
}, 120_000);
afterAll(() => demo?.stop());

describe('GatePolicy objects drive decisions live', () => {
  it('default deny: with no policy, even a signed commit is not pinned', async () => {
    const d = await push(true);
    expect(d.action).toBe('refuse-no-policy');
    expect((await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision).toBe('main');
  });

  it('an Audit policy pins as before and records that Enforce would refuse', async () => {
    const policy = fx.policy as { spec: Record<string, unknown> };
    await api.createNamespacedCustomObject({ ...G, body: { ...policy, spec: { ...policy.spec, mode: 'Audit' } } });
    await policyReady('demo-signers');
    const d = await push(false);
    expect(d.action).toBe('audit-pin');
    expect(d.reason).toMatch(/would refuse: UNSIGNED/);
    const app = await readApp(DEMO_APP.namespace, DEMO_APP.name);
    expect(app.revision).toBe(d.sha);
    expect(app.annotations['gitops-gate.io/mode']).toBe('audit');
  });

  it('switching the policy to Enforce (an edit) refuses unsigned commits and pins signed ones', async () => {
    await api.patchNamespacedCustomObject(
      { ...G, name: 'demo-signers', body: { spec: { mode: 'Enforce' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await policyReady('demo-signers');
    const pinned = (await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision;
    const refused = await push(false);
    expect(refused.action).toBe('refuse-unverified');
    expect((await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision).toBe(pinned);
    const ok = await push(true);
    expect(ok.action).toBe('pin');
    expect((await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision).toBe(ok.sha);
  });

  it('an invalid edit is reported in the status; the last valid Enforce generation stays in force (fail closed)', async () => {
    await api.patchNamespacedCustomObject(
      // Anchored, so the CRD accepts it (a real API server refuses an unanchored one with 422); only the gate finds it invalid.
      {
        ...G,
        name: 'demo-signers',
        body: { spec: { commits: { ssh: null, gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await policyReady('demo-signers');
    const obj = (await api.getNamespacedCustomObject({ ...G, name: 'demo-signers' })) as {
      status: { conditions: { status: string; message: string }[] };
    };
    expect(obj.status.conditions[0]).toMatchObject({ status: 'False' });
    expect(obj.status.conditions[0]?.message).toMatch(/identityRegExp/);
    expect(obj.status.conditions[0]?.message).toMatch(/generation \d+ \(the last valid one\) stays in force/);
    // Breaking an Enforce policy does not drop it: its last valid generation still decides.
    expect((await push(false)).action).toBe('refuse-unverified');
    expect((await push(true)).action).toBe('pin');
  });

  it('one policy file serves kubectl (the sandbox) and the CLI', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { writeFileSync } = await import('node:fs');
    const file = join(mkdtempSync(join(tmpdir(), 'gg-polfile-')), 'policy.yaml');
    const allowed = (fx.policy as { spec: { commits: { ssh: { allowedSigners: string } } } }).spec.commits.ssh.allowedSigners.trim();
    writeFileSync(
      file,
      `apiVersion: gitops-gate.io/v1alpha1
kind: GatePolicy
metadata:
  name: from-file
  namespace: argocd
spec:
  repository: https://github.com/demo/app
  branches: [main]
  commits:
    ssh:
      allowedSigners: ${JSON.stringify(allowed)}
`,
    );
    // Async: the sandbox runs in this process.
    const run = promisify(execFile);
    await run('kubectl', ['--kubeconfig', stack.kubeconfig, 'apply', '-f', file]);
    await policyReady('from-file');
    const sha = fx.repo.commit('checked by the cli', { signWith: fx.key });
    const bin = new URL('../../node_modules/.bin/gitops-gate', import.meta.url).pathname;
    const { stdout } = await run(bin, ['verify-commit', sha, '--repo', fx.repo.workDir, '--policy', file]);
    expect(stdout).toMatch(/^verified: /);
    fx.repo.push();
    expect((await sendPush(stack, sha, head)).status).toBe(202);
    head = sha;
    expect((await waitForDecision(gateUrl, sha)).action).toBe('pin');
    await api.deleteNamespacedCustomObject({ ...G, name: 'from-file' });
  });

  it('deleting the policy keeps default deny', async () => {
    await api.deleteNamespacedCustomObject({ ...G, name: 'demo-signers' });
    await sleep(300);
    const d = await push(true);
    expect(d.action).toBe('refuse-no-policy');
  });

  it('attacker: an Audit GatePolicy in another namespace selecting argocd does not pin an unsigned commit there', async () => {
    const policy = fx.policy as { spec: Record<string, unknown> };
    await api.createNamespacedCustomObject({
      ...G,
      namespace: 'default',
      body: {
        ...policy,
        metadata: { name: 'tenant', namespace: 'default' },
        spec: { ...policy.spec, mode: 'Audit', selector: { namespaces: [DEMO_APP.namespace] } },
      },
    });
    await policyReady('tenant', 'default');
    const d = await push(false);
    expect(d.action).toBe('refuse-no-policy');
    expect((await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision).not.toBe(d.sha);
    await api.deleteNamespacedCustomObject({ ...G, namespace: 'default', name: 'tenant' });
  });

  it('a ClusterGatePolicy governs the Application across namespaces; a never-valid Enforce policy next to an Audit one refuses', async () => {
    const policy = fx.policy as { spec: Record<string, unknown> };
    const C = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'clustergatepolicies' };
    await api.createClusterCustomObject({
      ...C,
      body: { ...policy, kind: 'ClusterGatePolicy', metadata: { name: 'platform' }, spec: { ...policy.spec, mode: 'Audit' } },
    });
    await sleep(300);
    expect((await push(false)).action).toBe('audit-pin');
    await api.createNamespacedCustomObject({
      ...G,
      body: {
        ...policy,
        metadata: { name: 'broken', namespace: DEMO_APP.namespace },
        spec: { ...policy.spec, commits: { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] } },
      },
    });
    await policyReady('broken');
    const d = await push(false);
    expect(d.action).toBe('refuse-invalid-policy');
    expect(d.reason).toMatch(/broken/);
    await api.deleteClusterCustomObject({ ...C, name: 'platform' });
    await api.deleteNamespacedCustomObject({ ...G, name: 'broken' });
  });
});
