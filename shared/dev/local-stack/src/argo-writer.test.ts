/**
 * The background "Argo CD" writer against the sandbox API server: it writes status like Argo CD's controller, never
 * the gate's fields, and a whole-object PUT of a copy read before a pin is refused instead of undoing the pin.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { argoApplicationKind, createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { startArgoWriter, type ArgoWriter } from './argo-writer.js';

const SHA = 'a'.repeat(40);
let sandbox: SandboxApiServer | undefined;
let writer: ArgoWriter | undefined;

interface App {
  metadata: { resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { source?: { targetRevision?: string } };
  status?: unknown;
}

/** Just enough of a client: read one Application, JSON-patch it (as the gate pins). */
function client(kc: KubeConfig) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const at = (name: string) => ({ group: 'argoproj.io', version: 'v1alpha1', namespace: 'argocd', plural: 'applications', name });
  return {
    get: async (_ns: string, name: string) => (await api.getNamespacedCustomObject(at(name))) as App,
    patch: (_ns: string, name: string, body: object[]) =>
      api.patchNamespacedCustomObject({ ...at(name), body }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)),
  };
}

async function setup(): Promise<{ kubeconfig: string; store: ReturnType<typeof client> }> {
  sandbox = await createSandboxApiServer({
    kinds: [argoApplicationKind],
    seed: [demoApplication({ name: 'app', namespace: 'argocd', repoURL: 'https://github.com/org/app.git', branch: 'main' })],
  });
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'gg-argo-writer-')), 'kubeconfig');
  await sandbox.writeKubeconfig(kubeconfig);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { kubeconfig, store: client(kc) };
}

afterEach(async () => {
  await writer?.stop();
  writer = undefined;
  await sandbox?.close();
  sandbox = undefined;
});

describe('argo writer', () => {
  it('refuses an interval that is not [min, max] with 0 < min <= max, naming it', async () => {
    const { kubeconfig } = await setup();
    await expect(startArgoWriter({ kubeconfig, namespace: 'argocd', intervalMs: [0, 10] })).rejects.toThrow(/intervalMs/);
    await expect(startArgoWriter({ kubeconfig, namespace: 'argocd', intervalMs: [10, 5] })).rejects.toThrow(/intervalMs/);
  });

  it("writes status, sync bursts and operation state, and never the gate's fields", async () => {
    const { kubeconfig, store } = await setup();
    const before = await store.get('argocd', 'app');
    writer = await startArgoWriter({
      kubeconfig,
      namespace: 'argocd',
      intervalMs: [5, 10],
      syncProbability: 0.5,
      burst: 2,
      burstGapMs: 2,
      putProbability: 0.3,
      putDelayMs: 1,
    });
    const deadline = Date.now() + 10_000;
    while (writer.stats().syncs < 3 && Date.now() < deadline) await sleep(20);
    await writer.stop();
    const stats = writer.stats();
    expect(stats.errors).toBe(0);
    expect(stats.statusPatches).toBeGreaterThan(0);
    expect(stats.syncs).toBeGreaterThanOrEqual(3);
    const after = await store.get('argocd', 'app');
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
    expect(after.status).toMatchObject({ sync: { revision: 'main' }, health: {} });
  });

  it('a PUT of a copy read before a pin is refused (409) and re-read: the pin stays', async () => {
    const { kubeconfig, store } = await setup();
    // Every write a PUT, with a long pause between its GET and its PUT: the pin lands in that pause.
    writer = await startArgoWriter({
      kubeconfig,
      namespace: 'argocd',
      intervalMs: [10_000, 10_000],
      syncProbability: 0,
      putProbability: 1,
      putDelayMs: 300,
      random: () => 0.05,
    });
    const deadline = Date.now() + 15_000;
    // The first refresh starts within one interval; wait until its GET has been served, then pin.
    const gets = () => sandbox!.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/applications/app')).length;
    while (gets() === 0 && Date.now() < deadline) await sleep(5);
    const app = await store.get('argocd', 'app');
    await store.patch('argocd', 'app', [
      { op: 'replace', path: '/metadata/resourceVersion', value: app.metadata.resourceVersion! },
      { op: 'add', path: '/spec/source/targetRevision', value: SHA },
    ]);
    while (writer.stats().puts === 0 && Date.now() < deadline) await sleep(10);
    await writer.stop();
    expect(writer.stats()).toMatchObject({ puts: 1, putConflicts: 1, errors: 0 });
    expect((await store.get('argocd', 'app')).spec?.source?.targetRevision).toBe(SHA);
  });
});
