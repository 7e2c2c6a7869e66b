import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createLogger } from '@gitops-gate/telemetry';
import { createCachedApplicationStore, type CachedApplicationStore } from './app-cache.js';
import { createKubeApplicationStore } from './kube.js';

const silent = createLogger('cache-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
let sandbox: SandboxApiServer;
let store: CachedApplicationStore;
let api: CustomObjectsApi;

async function until(fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeEach(async () => {
  sandbox = await createSandboxApiServer({
    seed: [
      demoApplication({ name: 'a', namespace: 'argocd', repoURL: 'https://github.com/org/a', branch: 'main' }),
      demoApplication({ name: 'b', namespace: 'team', repoURL: 'https://github.com/org/b', branch: 'main' }),
    ],
  });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  api = kc.makeApiClient(CustomObjectsApi);
  store = createCachedApplicationStore(kc, createKubeApplicationStore(kc), [], silent);
});
afterEach(async () => {
  await store.stop();
  await sandbox.close();
});

describe('cached application store', () => {
  it('lists from the informer cache: no LIST per call, and sees changes through the watch', async () => {
    await store.start();
    const before = sandbox
      .requests()
      .filter((r) => r.method === 'GET' && r.path.endsWith('/applications') && !r.query.includes('watch')).length;
    for (let i = 0; i < 5; i++) expect((await store.list([])).map((a) => a.metadata.name).sort()).toEqual(['a', 'b']);
    expect((await store.list(['team'])).map((a) => a.metadata.name)).toEqual(['b']);
    const after = sandbox
      .requests()
      .filter((r) => r.method === 'GET' && r.path.endsWith('/applications') && !r.query.includes('watch')).length;
    expect(after).toBe(before);
    await api.createNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: 'argocd',
      plural: 'applications',
      body: demoApplication({ name: 'c', namespace: 'argocd', repoURL: 'https://github.com/org/c', branch: 'main' }),
    });
    await until(async () => (await store.list([])).length === 3);
  });

  it('before the first sync it asks the API server directly', async () => {
    expect((await store.list([])).length).toBe(2);
  });
});
