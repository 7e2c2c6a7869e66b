/**
 * The sandbox driven by the real @kubernetes/client-node 2.x, the way the gate talks to Argo CD Applications.
 */
import {
  ApiException,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from './index.js';

const group = 'argoproj.io';
const version = 'v1alpha1';
const plural = 'applications';
const namespace = 'argocd';
const REPO = 'https://example.invalid/deploy.git';

interface App {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    generation: number;
    uid: string;
    annotations?: Record<string, string>;
  };
  spec: { project: string; source: { repoURL: string; targetRevision: string }; destination: unknown };
}
interface StatusBody {
  kind: string;
  apiVersion: string;
  status: string;
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ reason: string; message: string; field: string }> };
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

let server: SandboxApiServer;
let kc: KubeConfig;
let api: CustomObjectsApi;

beforeEach(async () => {
  server = await createSandboxApiServer({
    seed: [demoApplication({ name: 'guestbook', repoURL: REPO, branch: 'main', path: 'guestbook' })],
  });
  kc = new KubeConfig();
  kc.loadFromString(server.kubeconfigYaml());
  api = kc.makeApiClient(CustomObjectsApi);
});

afterEach(async () => {
  await server.close();
});

async function failure(p: Promise<unknown>): Promise<{ code: number; body: StatusBody | undefined }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const raw = err.body as unknown;
      return { code: err.code, body: typeof raw === 'string' && raw ? (JSON.parse(raw) as StatusBody) : undefined };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

const getApp = (name = 'guestbook') => api.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<App>;

const patchApp = (body: unknown, options = merge, name = 'guestbook') =>
  api.patchNamespacedCustomObject({ group, version, namespace, plural, name, body }, options) as Promise<App>;

describe('CustomObjectsApi against the sandbox', () => {
  it('gets, lists across namespaces and merge-patches an Application', async () => {
    const app = await getApp();
    expect(app.spec.source.targetRevision).toBe('main');
    expect(app.metadata.annotations?.['gitops-gate.io/branch']).toBe('main');
    expect(app.metadata.generation).toBe(1);

    const list = (await api.listClusterCustomObject({ group, version, plural })) as {
      kind: string;
      metadata: { resourceVersion: string };
      items: App[];
    };
    expect(list.kind).toBe('ApplicationList');
    expect(list.items.map((i) => i.metadata.name)).toEqual(['guestbook']);
    expect(Number(list.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(app.metadata.resourceVersion));

    const sha = '0123456789abcdef0123456789abcdef01234567';
    const patched = await patchApp({ spec: { source: { targetRevision: sha } } });
    expect(patched.spec.source.targetRevision).toBe(sha);
    expect(patched.spec.source.repoURL).toBe(REPO);
    expect(Number(patched.metadata.resourceVersion)).toBeGreaterThan(Number(app.metadata.resourceVersion));
    expect(patched.metadata.generation).toBe(2);
    expect((await getApp()).spec.source.targetRevision).toBe(sha);
  });

  it('rejects a merge patch carrying a stale resourceVersion with 409 Conflict', async () => {
    const app = await getApp();
    await patchApp({ metadata: { annotations: { touched: 'yes' } } });
    const res = await failure(
      patchApp({ metadata: { resourceVersion: app.metadata.resourceVersion }, spec: { source: { targetRevision: 'abc' } } }),
    );
    expect(res.code).toBe(409);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'Operation cannot be fulfilled on applications.argoproj.io "guestbook": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'guestbook', group: 'argoproj.io', kind: 'applications' },
      code: 409,
    });
    expect((await getApp()).spec.source.targetRevision).toBe('main');
  });

  it('applies a JSON patch whose test passes and answers a failed test with the generic 422', async () => {
    const app = await getApp();
    const ok = await patchApp(
      [
        { op: 'test', path: '/metadata/resourceVersion', value: app.metadata.resourceVersion },
        { op: 'replace', path: '/spec/source/targetRevision', value: 'feedface' },
      ],
      jsonPatch,
    );
    expect(ok.spec.source.targetRevision).toBe('feedface');

    const res = await failure(
      patchApp(
        [
          { op: 'test', path: '/spec/source/targetRevision', value: 'main' },
          { op: 'replace', path: '/spec/source/targetRevision', value: 'deadbeef' },
        ],
        jsonPatch,
      ),
    );
    expect(res.code).toBe(422);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the server rejected our request due to an error in our request',
      reason: 'Invalid',
      details: {},
      code: 422,
    });
    expect((await getApp()).spec.source.targetRevision).toBe('feedface');
  });

  it('answers a missing Application with 404 NotFound', async () => {
    const res = await failure(getApp('nope'));
    expect(res.code).toBe(404);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'applications.argoproj.io "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', group: 'argoproj.io', kind: 'applications' },
      code: 404,
    });
    expect((await failure(patchApp({ spec: {} }, merge, 'nope'))).code).toBe(404);
  });

  it('answers denied verbs with an RBAC-style 403 and leaves other verbs alone', async () => {
    server.deny({ verb: 'patch', resource: 'applications', namespace: 'argocd', name: 'guestbook' });
    const res = await failure(patchApp({ spec: { source: { targetRevision: 'x' } } }));
    expect(res.code).toBe(403);
    expect(res.body?.reason).toBe('Forbidden');
    expect(res.body?.message).toBe(
      'applications.argoproj.io "guestbook" is forbidden: User "system:serviceaccount:argocd:gitops-gate" cannot patch resource "applications" in API group "argoproj.io" in the namespace "argocd"',
    );
    expect(res.body?.details).toEqual({ name: 'guestbook', group: 'argoproj.io', kind: 'applications' });
    expect((await getApp()).spec.source.targetRevision).toBe('main');

    server.clearFaults();
    expect((await patchApp({ spec: { source: { targetRevision: 'x' } } })).spec.source.targetRevision).toBe('x');
  });

  it('answers an invalid Application with 422 Invalid and field causes', async () => {
    const bad = demoApplication({ name: 'broken', repoURL: REPO, branch: 'main' }) as { spec: Record<string, unknown> };
    delete bad.spec['destination'];
    bad.spec['project'] = 7;
    const res = await failure(api.createNamespacedCustomObject({ group, version, namespace, plural, body: bad }));
    expect(res.code).toBe(422);
    expect(res.body?.reason).toBe('Invalid');
    expect(res.body?.details?.kind).toBe('Application');
    expect(res.body?.details?.group).toBe('argoproj.io');
    expect(res.body?.details?.name).toBe('broken');
    expect(res.body?.message).toMatch(/^Application\.argoproj\.io "broken" is invalid: /);
    const causes = res.body?.details?.causes ?? [];
    expect(causes.length).toBeGreaterThan(0);
    for (const c of causes) expect(typeof c.field).toBe('string');
    const fields = causes.map((c) => c.field);
    expect(fields.some((f) => f === 'spec.destination' || f === 'spec.project')).toBe(true);
    expect((await failure(getApp('broken'))).code).toBe(404);

    // A patch that would make a valid object invalid is refused too, and nothing is written.
    const rv = (await getApp()).metadata.resourceVersion;
    const res2 = await failure(patchApp({ spec: { destination: null } }));
    expect(res2.code).toBe(422);
    expect(res2.body?.details?.causes).toEqual([{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.destination' }]);
    expect((await getApp()).metadata.resourceVersion).toBe(rv);
  });

  it('answers a wrong token with 401', async () => {
    const other = new KubeConfig();
    other.loadFromString(server.kubeconfigYaml().replace(server.token, 'not-the-token'));
    const res = await failure(
      other.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group, version, namespace, plural, name: 'guestbook' }),
    );
    expect(res.code).toBe(401);
  });

  it('fails the next N matching requests with injected 409s, then lets the write through', async () => {
    server.injectFault({ method: 'PATCH', pathIncludes: '/applications/guestbook', status: 409, count: 3 });
    let attempts = 0;
    let result: App | undefined;
    const conflicts: StatusBody[] = [];
    while (!result) {
      attempts++;
      try {
        result = await patchApp({ spec: { source: { targetRevision: 'retried' } } });
      } catch (err) {
        if (!(err instanceof ApiException) || err.code !== 409 || attempts > 10) throw err;
        conflicts.push(JSON.parse(err.body as string) as StatusBody);
      }
    }
    expect(attempts).toBe(4);
    expect(conflicts[0]?.reason).toBe('Conflict');
    expect(result.spec.source.targetRevision).toBe('retried');
    const patches = server.requests().filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.status)).toEqual([409, 409, 409, 200]);
    // GETs were never matched by the PATCH-only fault.
    expect((await getApp()).spec.source.targetRevision).toBe('retried');
  });

  it('injects a 503 ServiceUnavailable once', async () => {
    server.injectFault({ status: 503, pathIncludes: '/applications/guestbook' });
    const res = await failure(getApp());
    expect(res.code).toBe(503);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'ServiceUnavailable', code: 503 });
    expect((await getApp()).metadata.name).toBe('guestbook');
  });

  it('lets exactly one of two writers holding the same resourceVersion win', async () => {
    const { resourceVersion } = (await getApp()).metadata;
    const results = await Promise.allSettled([
      patchApp({ metadata: { resourceVersion }, spec: { source: { targetRevision: 'writer-a' } } }),
      patchApp({ metadata: { resourceVersion }, spec: { source: { targetRevision: 'writer-b' } } }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]?.reason as ApiException<unknown>).code).toBe(409);
    const winner = (won[0] as PromiseFulfilledResult<App>).value.spec.source.targetRevision;
    expect((await getApp()).spec.source.targetRevision).toBe(winner);
  });

  it('works over the plain-HTTP URL with the same token', async () => {
    const plain = new KubeConfig();
    plain.loadFromString(server.kubeconfigYaml({ scheme: 'http' }));
    expect(plain.getCurrentCluster()?.server).toBe(server.url);
    const app = (await plain
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ group, version, namespace, plural, name: 'guestbook' })) as App;
    expect(app.metadata.name).toBe('guestbook');
  });
});

interface WatchEvent {
  type: string;
  object: {
    kind?: string;
    code?: number;
    reason?: string;
    metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
  };
}

/** Collects watch events until `until` says so; resolves with everything seen. */
function collect(
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  until: (events: WatchEvent[]) => boolean,
): { events: Promise<WatchEvent[]>; ready: Promise<AbortController> } {
  const seen: WatchEvent[] = [];
  let resolveEvents!: (e: WatchEvent[]) => void;
  let rejectEvents!: (e: unknown) => void;
  const events = new Promise<WatchEvent[]>((res, rej) => {
    resolveEvents = res;
    rejectEvents = rej;
  });
  let controller: AbortController | undefined;
  const ready = new Watch(kc).watch(
    path,
    query,
    (type, object) => {
      seen.push({ type, object: object as WatchEvent['object'] });
      if (until(seen)) {
        resolveEvents(seen);
        controller?.abort();
      }
    },
    (err: unknown) => {
      if (until(seen)) resolveEvents(seen);
      else if (err) rejectEvents(err);
      else resolveEvents(seen);
    },
  );
  void ready.then((c) => {
    controller = c;
  });
  return { events, ready };
}

describe('Watch against the sandbox', () => {
  const path = `/apis/${group}/${version}/namespaces/${namespace}/${plural}`;

  it('streams ADDED, MODIFIED and DELETED after the listed resourceVersion', async () => {
    const list = (await api.listNamespacedCustomObject({ group, version, namespace, plural })) as { metadata: { resourceVersion: string } };
    const w = collect(path, { resourceVersion: list.metadata.resourceVersion }, (e) => e.some((x) => x.type === 'DELETED'));
    await w.ready;
    // The watch is registered once the response headers arrived (ready resolved), so writes from here on are seen.
    await api.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      body: demoApplication({ name: 'second', repoURL: REPO, branch: 'release' }),
    });
    await patchApp({ spec: { source: { targetRevision: 'cafe' } } }, merge, 'second');
    await api.deleteNamespacedCustomObject({ group, version, namespace, plural, name: 'second' });
    const events = await w.events;
    expect(events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED second', 'MODIFIED second', 'DELETED second']);
    const rvs = events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(rvs[0]).toBeGreaterThan(Number(list.metadata.resourceVersion));
    expect(rvs[1]).toBeGreaterThan(rvs[0] ?? Infinity);
    expect(rvs[2]).toBeGreaterThan(rvs[1] ?? Infinity);
  });

  it('answers a watch from a compacted resourceVersion with a 410 Expired ERROR event, and a relist recovers', async () => {
    await server.close();
    server = await createSandboxApiServer({
      watchHistory: 2,
      seed: [demoApplication({ name: 'guestbook', repoURL: REPO, branch: 'main' })],
    });
    kc = new KubeConfig();
    kc.loadFromString(server.kubeconfigYaml());
    api = kc.makeApiClient(CustomObjectsApi);

    const list = (await api.listNamespacedCustomObject({ group, version, namespace, plural })) as { metadata: { resourceVersion: string } };
    for (const rev of ['a', 'b', 'c']) await patchApp({ spec: { source: { targetRevision: rev } } });

    const stale = collect(path, { resourceVersion: list.metadata.resourceVersion }, (e) => e.length > 0);
    const events = await stale.events;
    expect(events[0]?.type).toBe('ERROR');
    expect(events[0]?.object).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 });

    const relist = (await api.listNamespacedCustomObject({ group, version, namespace, plural })) as {
      metadata: { resourceVersion: string };
      items: App[];
    };
    expect(relist.items[0]?.spec.source.targetRevision).toBe('c');
    const fresh = collect(path, { resourceVersion: relist.metadata.resourceVersion }, (e) => e.length > 0);
    await fresh.ready;
    await patchApp({ spec: { source: { targetRevision: 'd' } } });
    const next = await fresh.events;
    expect(next[0]?.type).toBe('MODIFIED');
    expect(Number(next[0]?.object.metadata?.resourceVersion)).toBeGreaterThan(Number(relist.metadata.resourceVersion));
  });

  it('turns an injected 410 on a watch into the ERROR event the real server sends', async () => {
    server.injectFault({ pathIncludes: 'watch=true', status: 410 });
    const w = collect(path, {}, (e) => e.some((x) => x.type === 'ERROR'));
    const events = await w.events;
    expect(events).toHaveLength(1);
    expect(events[0]?.object).toMatchObject({ reason: 'Expired', code: 410 });
  });

  it('sends BOOKMARK events when asked to', async () => {
    await server.close();
    server = await createSandboxApiServer({ bookmarkIntervalMs: 20 });
    kc = new KubeConfig();
    kc.loadFromString(server.kubeconfigYaml());
    const w = collect(path, { allowWatchBookmarks: true, resourceVersion: '0' }, (e) => e.some((x) => x.type === 'BOOKMARK'));
    const events = await w.events;
    const bm = events.find((e) => e.type === 'BOOKMARK');
    expect(bm?.object.kind).toBe('Application');
    expect(Number(bm?.object.metadata?.resourceVersion)).toBeGreaterThan(0);
  });

  it('feeds a client-node informer (list, then watch)', async () => {
    const informer = makeInformer<KubernetesObject>(
      kc,
      path,
      () => api.listNamespacedCustomObject({ group, version, namespace, plural }) as never,
    );
    const seen: string[] = [];
    const updated = new Promise<void>((resolve) => {
      informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
      informer.on('update', (o) => {
        seen.push(`update ${o.metadata?.name}`);
        resolve();
      });
    });
    const added = new Promise<void>((resolve) => informer.on('add', () => resolve()));
    await informer.start();
    await added;
    await patchApp({ spec: { source: { targetRevision: 'informed' } } });
    await updated;
    await informer.stop();
    expect(seen).toEqual(['add guestbook', 'update guestbook']);
    expect((informer.get('guestbook', namespace) as unknown as App | undefined)?.spec.source.targetRevision).toBe('informed');
  });
});
