/**
 * Watches as a real apiserver has them: a short resume history (by count and by age; older resumes get 410 Expired)
 * and a server-side limit on every watch, so clients relist as they do in production. The real client-node informer
 * must relist through both and lose nothing.
 */
import {
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createSandboxApiServer, demoApplication, SandboxError, type SandboxApiServer } from './index.js';
import { createStore, type Obj } from './store.js';

const APPS = '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications';
const REPO = 'https://github.com/org/deploy';
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let server: SandboxApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const auth = () => ({ Authorization: `Bearer ${server!.token}` });
const app = (name: string) => demoApplication({ name, repoURL: REPO, branch: 'main' });

async function create(name: string): Promise<string> {
  const res = await fetch(`${server!.url}${APPS}`, {
    method: 'POST',
    headers: { ...auth(), 'Content-Type': 'application/json' },
    body: JSON.stringify(app(name)),
  });
  const body = (await res.json()) as { metadata: { resourceVersion: string } };
  return body.metadata.resourceVersion;
}

/** Reads a watch stream to its end (or `max` lines); returns the events and how long the stream stayed open. */
async function watchLines(query: string, max = Infinity): Promise<{ events: Array<{ type: string; object: any }>; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(`${server!.url}${APPS}?watch=true&${query}`, { headers: auth() });
  const reader = res.body!.getReader();
  const events: Array<{ type: string; object: any }> = [];
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += Buffer.from(value).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
    if (events.length >= max) {
      await reader.cancel();
      break;
    }
  }
  return { events, ms: Date.now() - t0 };
}

describe('resume history', () => {
  it('forgets events older than the window: a resume from before it is too old, a resume from the newest is not', () => {
    let t = 0;
    const store = createStore({ watchHistory: 1000, watchHistoryMs: 75_000, startRv: 10, now: () => t });
    const obj = (name: string) => ({ metadata: { name, namespace: 'a' } }) as Obj;
    store.commit('g/r', 'ADDED', obj('a'));
    t = 30_000;
    const second = store.commit('g/r', 'ADDED', obj('b')).rv;
    expect(store.eventsSince('g/r', 10)?.length).toBe(2);
    t = 80_000;
    expect(store.eventsSince('g/r', 10)).toBeNull();
    expect(store.eventsSince('g/r', second - 1)?.map((e) => e.object.metadata.name)).toEqual(['b']);
    t = 200_000;
    expect(store.eventsSince('g/r', second - 1)).toBeNull();
    // Nothing was missed by a client that saw the newest event: it resumes without a relist.
    expect(store.eventsSince('g/r', second)).toEqual([]);
  });

  it("keeps resumes of one resource valid while only other resources' events were dropped (per-resource caches)", () => {
    const store = createStore({ watchHistory: 2, startRv: 10 });
    const obj = (name: string) => ({ metadata: { name, namespace: 'a' } }) as Obj;
    const policyRv = store.commit('g/policies', 'ADDED', obj('p')).rv;
    for (const n of ['a', 'b', 'c', 'd']) store.commit('g/apps', 'ADDED', obj(n));
    expect(store.eventsSince('g/policies', policyRv)).toEqual([]);
    expect(store.eventsSince('g/policies', policyRv - 1)).toBeNull();
    expect(store.eventsSince('g/apps', policyRv)).toBeNull();
  });

  it('answers a watch resumed after the window with an ERROR event carrying 410 Expired', async () => {
    server = await createSandboxApiServer({ watchHistoryMs: 50, tls: false });
    const first = await create('one');
    await create('two');
    await new Promise((r) => setTimeout(r, 120));
    await create('three');
    const { events } = await watchLines(`resourceVersion=${first}`);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    expect(events[0]!.object.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
  });
});

describe('server-side watch limit', () => {
  it('ends every watch after a time in [minMs, maxMs]; a shorter timeoutSeconds still wins', async () => {
    server = await createSandboxApiServer({ watchTimeout: { minMs: 300, maxMs: 500 }, tls: false });
    const { ms } = await watchLines('');
    expect(ms).toBeGreaterThanOrEqual(280);
    expect(ms).toBeLessThan(2000);
    await server.close();
    server = await createSandboxApiServer({ watchTimeout: { minMs: 20_000, maxMs: 30_000 }, tls: false });
    const client = await watchLines('timeoutSeconds=1');
    expect(client.ms).toBeGreaterThanOrEqual(950);
    expect(client.ms).toBeLessThan(5000);
    await expect(createSandboxApiServer({ watchTimeout: { minMs: 10, maxMs: 5 } })).rejects.toBeInstanceOf(SandboxError);
  });
});

describe('the client-node informer through expiries', () => {
  it('relists after 410s and server-closed watches and ends with exactly the server state, every write seen', async () => {
    // A tiny history and short watches: most reconnects find their resourceVersion expired and must relist.
    server = await createSandboxApiServer({ watchHistory: 3, watchTimeout: { minMs: 150, maxMs: 300 }, namespaces: ['argocd'] });
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfigYaml());
    const api = kc.makeApiClient(CustomObjectsApi);
    const ref = { group: 'argoproj.io', version: 'v1alpha1', namespace: 'argocd', plural: 'applications' };
    const informer = makeInformer<KubernetesObject>(kc, APPS, () => api.listNamespacedCustomObject(ref) as never);
    const seenRv = new Map<string, string>();
    const deleted = new Set<string>();
    const note = (o: KubernetesObject) => {
      seenRv.set(o.metadata!.name!, o.metadata!.resourceVersion!);
      deleted.delete(o.metadata!.name!);
    };
    informer.on('add', note);
    informer.on('update', note);
    informer.on('delete', (o) => {
      seenRv.delete(o.metadata!.name!);
      deleted.add(o.metadata!.name!);
    });
    await informer.start();

    const live = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const name = `app-${i % 12}`;
      if (!live.has(name)) {
        await api.createNamespacedCustomObject({ ...ref, body: app(name) });
        live.add(name);
      } else if (i % 5 === 0) {
        await api.deleteNamespacedCustomObject({ ...ref, name });
        live.delete(name);
      } else {
        await api.patchNamespacedCustomObject({ ...ref, name, body: { metadata: { annotations: { step: String(i) } } } }, merge);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const truth = async () =>
      new Map(
        ((await api.listNamespacedCustomObject(ref)) as { items: KubernetesObject[] }).items.map((o) => [
          o.metadata!.name!,
          o.metadata!.resourceVersion!,
        ]),
      );
    const want = await truth();
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && JSON.stringify([...seenRv].sort()) !== JSON.stringify([...want].sort()))
      await new Promise((r) => setTimeout(r, 100));
    await informer.stop();
    expect([...seenRv].sort()).toEqual([...want].sort());
    expect(new Map(informer.list().map((o) => [o.metadata!.name!, o.metadata!.resourceVersion!]))).toEqual(want);
    for (const name of deleted) expect(want.has(name)).toBe(false);
    const lists = server.requests().filter((q) => q.method === 'GET' && q.path === APPS && !q.query.includes('watch')).length;
    const watches = server.requests().filter((q) => q.query.includes('watch')).length;
    expect(lists, 'relists after expiry').toBeGreaterThan(1);
    expect(watches).toBeGreaterThan(lists);
  }, 60_000);
});
