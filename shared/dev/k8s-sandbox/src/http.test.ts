/**
 * Protocol-level behaviour of the sandbox over raw HTTP: the exact bodies and codes the real kube-apiserver produces.
 */
import { request as httpsRequest } from 'node:https';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSandboxApiServer, demoApplication, type ResourceKind, type SandboxApiServer } from './index.js';

const REPO = 'https://example.invalid/deploy.git';
const APPS = '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications';

let server: SandboxApiServer;

beforeEach(async () => {
  server = await createSandboxApiServer({
    seed: [
      demoApplication({ name: 'guestbook', repoURL: REPO, branch: 'main' }),
      demoApplication({ name: 'billing', namespace: 'team-b', repoURL: REPO, branch: 'release' }),
    ],
  });
});
afterEach(async () => {
  await server.close();
});

interface Res {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function call(
  method: string,
  path: string,
  opts: { body?: unknown; contentType?: string; accept?: string; token?: string | null } = {},
): Promise<Res> {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers['authorization'] = `Bearer ${opts.token ?? server.token}`;
  if (opts.accept) headers['accept'] = opts.accept;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const get = (path: string, accept?: string) => call('GET', path, accept ? { accept } : {});
const mergePatch = (path: string, body: unknown) => call('PATCH', path, { body, contentType: 'application/merge-patch+json' });

/** Reads newline-delimited watch events until `until` is satisfied or the server ends the stream. */
async function watch(path: string, until: (events: any[]) => boolean, onOpen?: () => Promise<void>): Promise<any[]> {
  const ac = new AbortController();
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.token}` }, signal: ac.signal });
  expect(res.status).toBe(200);
  const events: any[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const opened = onOpen?.();
  try {
    for (;;) {
      if (until(events)) break;
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    }
  } finally {
    ac.abort();
    await opened;
  }
  return events;
}

describe('discovery', () => {
  it('serves legacy discovery documents', async () => {
    const api = await get('/api');
    expect(api.json).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const v1 = await get('/api/v1');
    expect(v1.json.resources).toContainEqual(
      expect.objectContaining({ name: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'] }),
    );
    const apis = await get('/apis');
    expect(apis.json.kind).toBe('APIGroupList');
    expect(apis.json.groups).toContainEqual({
      name: 'argoproj.io',
      versions: [{ groupVersion: 'argoproj.io/v1alpha1', version: 'v1alpha1' }],
      preferredVersion: { groupVersion: 'argoproj.io/v1alpha1', version: 'v1alpha1' },
    });
    expect((await get('/apis/argoproj.io')).json).toMatchObject({ kind: 'APIGroup', name: 'argoproj.io' });
    const gv = await get('/apis/argoproj.io/v1alpha1');
    expect(gv.json).toEqual({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'argoproj.io/v1alpha1',
      resources: [
        {
          name: 'applications',
          singularName: 'application',
          namespaced: true,
          kind: 'Application',
          verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
          shortNames: ['app', 'apps'],
        },
      ],
    });
    const missing = await get('/apis/nope.example/v1');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
  });

  it('serves aggregated discovery when asked for it', async () => {
    const accept = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json';
    const apis = await get('/apis', accept);
    expect(apis.headers.get('content-type')).toBe('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    expect(apis.json.kind).toBe('APIGroupDiscoveryList');
    expect(apis.json.apiVersion).toBe('apidiscovery.k8s.io/v2');
    const argo = apis.json.items.find((i: any) => i.metadata.name === 'argoproj.io');
    expect(argo.versions[0].version).toBe('v1alpha1');
    expect(argo.versions[0].resources[0]).toMatchObject({
      resource: 'applications',
      responseKind: { group: 'argoproj.io', version: 'v1alpha1', kind: 'Application' },
      scope: 'Namespaced',
      singularResource: 'application',
      shortNames: ['app', 'apps'],
    });
    const core = await get('/api', accept);
    expect(core.json.items[0].versions[0].resources[0]).toMatchObject({ resource: 'namespaces', scope: 'Cluster' });
  });
});

describe('authentication', () => {
  it('lets /version through without a token and refuses everything else with 401', async () => {
    expect((await call('GET', '/version', { token: null })).json.major).toBe('1');
    const anon = await call('GET', APPS, { token: null });
    expect(anon.status).toBe(401);
    expect(anon.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
    expect((await call('GET', '/version', { token: 'wrong' })).status).toBe(401);
    expect((await call('GET', '/apis', { token: 'wrong' })).status).toBe(401);
  });

  it('speaks TLS on the same port, with a certificate the published CA verifies', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        `${server.httpsUrl}/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/guestbook`,
        { ca: server.caPem, headers: { authorization: `Bearer ${server.token}` } },
        (res) => {
          let data = '';
          res.on('data', (c: Buffer) => (data += c.toString()));
          res.on('end', () => resolve(data));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body).metadata.name).toBe('guestbook');
    expect(server.kubeconfigYaml()).toContain(`server: "${server.httpsUrl}"`);
    expect(server.kubeconfigYaml()).toContain('certificate-authority-data: ');
  });
});

describe('reads', () => {
  it('serves Table responses for kubectl get', async () => {
    const t = await get(APPS, 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
    expect(t.json.kind).toBe('Table');
    expect(t.json.apiVersion).toBe('meta.k8s.io/v1');
    expect(t.json.columnDefinitions.map((c: any) => [c.name, c.priority])).toEqual([
      ['Name', 0],
      ['Sync Status', 0],
      ['Health Status', 0],
      ['Revision', 10],
      ['Project', 10],
    ]);
    expect(t.json.rows).toHaveLength(1);
    expect(t.json.rows[0].cells).toEqual(['guestbook', null, null, null, 'default']);
    expect(t.json.rows[0].object).toMatchObject({
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { name: 'guestbook', namespace: 'argocd' },
    });
    expect(Number(t.json.metadata.resourceVersion)).toBeGreaterThan(0);

    const full = await get(`${APPS}?includeObject=Object`, 'application/json;as=Table;v=v1;g=meta.k8s.io');
    expect(full.json.rows[0].object.spec.project).toBe('default');

    const ns = await get('/api/v1/namespaces/argocd', 'application/json;as=Table;v=v1;g=meta.k8s.io');
    expect(ns.json.columnDefinitions.map((c: any) => c.name)).toEqual(['Name', 'Status', 'Age']);
    expect(ns.json.rows[0].cells[0]).toBe('argocd');
    expect(ns.json.rows[0].cells[1]).toBe('Active');
    expect(ns.json.rows[0].cells[2]).toMatch(/^\d+s$/);
  });

  it('lists with label selectors (=, !=, in, notin, exists, !exists) and field selectors', async () => {
    await mergePatch(`${APPS}/guestbook`, { metadata: { labels: { tier: 'frontend', team: 'a' } } });
    await mergePatch('/apis/argoproj.io/v1alpha1/namespaces/team-b/applications/billing', { metadata: { labels: { tier: 'backend' } } });
    const names = async (q: string) =>
      (await get(`/apis/argoproj.io/v1alpha1/applications?${q}`)).json.items.map((i: any) => i.metadata.name).sort();
    expect(await names('labelSelector=tier%3Dfrontend')).toEqual(['guestbook']);
    expect(await names('labelSelector=tier%3D%3Dbackend')).toEqual(['billing']);
    expect(await names('labelSelector=tier!%3Dfrontend')).toEqual(['billing']);
    expect(await names(`labelSelector=${encodeURIComponent('tier in (frontend,backend)')}`)).toEqual(['billing', 'guestbook']);
    expect(await names(`labelSelector=${encodeURIComponent('tier notin (frontend)')}`)).toEqual(['billing']);
    expect(await names('labelSelector=team')).toEqual(['guestbook']);
    expect(await names('labelSelector=!team')).toEqual(['billing']);
    expect(await names(`labelSelector=${encodeURIComponent('tier,team=a')}`)).toEqual(['guestbook']);
    expect(await names('fieldSelector=metadata.name%3Dbilling')).toEqual(['billing']);
    expect(await names('fieldSelector=metadata.namespace!%3Dteam-b')).toEqual(['guestbook']);
    const bad = await get('/apis/argoproj.io/v1alpha1/applications?fieldSelector=spec.project%3Ddefault');
    expect(bad.status).toBe(400);
    expect(bad.json.reason).toBe('BadRequest');
    expect(bad.json.message).toBe('"spec.project" is not a known field selector: only "metadata.name", "metadata.namespace"');
    expect((await get(`/apis/argoproj.io/v1alpha1/applications?labelSelector=${encodeURIComponent('a in (')}`)).status).toBe(400);
  });

  it('paginates with limit and continue', async () => {
    for (const name of ['a1', 'a2', 'a3']) {
      expect((await call('POST', APPS, { body: demoApplication({ name, repoURL: REPO, branch: 'main' }) })).status).toBe(201);
    }
    const page1 = await get(`${APPS}?limit=2`);
    expect(page1.json.items.map((i: any) => i.metadata.name)).toEqual(['a1', 'a2']);
    expect(page1.json.metadata.remainingItemCount).toBe(2);
    const page2 = await get(`${APPS}?limit=2&continue=${page1.json.metadata.continue}`);
    expect(page2.json.items.map((i: any) => i.metadata.name)).toEqual(['a3', 'guestbook']);
    expect(page2.json.metadata.continue).toBeUndefined();

    // Walking every page across namespaces whose names prefix each other yields exactly the unpaged list.
    await call('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd-x' } } });
    await call('POST', '/apis/argoproj.io/v1alpha1/namespaces/argocd-x/applications', {
      body: demoApplication({ name: 'x1', namespace: 'argocd-x', repoURL: REPO, branch: 'main' }),
    });
    const all = (await get('/apis/argoproj.io/v1alpha1/applications')).json.items.map(
      (i: any) => `${i.metadata.namespace}/${i.metadata.name}`,
    );
    const paged: string[] = [];
    let token = '';
    do {
      const page = await get(`/apis/argoproj.io/v1alpha1/applications?limit=1${token ? `&continue=${token}` : ''}`);
      paged.push(...page.json.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`));
      token = page.json.metadata.continue ?? '';
    } while (token && paged.length < 20);
    expect(paged).toEqual(all);
    expect(all).toHaveLength(6);
  });

  it('answers YAML when only YAML is acceptable, and 406 for what it cannot produce', async () => {
    const y = await get(`${APPS}/guestbook`, 'application/yaml');
    expect(y.headers.get('content-type')).toBe('application/yaml');
    expect(y.text).toContain('kind: Application');
    const p = await get(`${APPS}/guestbook`, 'application/vnd.kubernetes.protobuf');
    expect(p.status).toBe(406);
    expect(p.json.reason).toBe('NotAcceptable');
  });
});

describe('writes', () => {
  it('creates with server-set metadata, generateName, and the real create errors', async () => {
    const created = await call('POST', APPS, {
      body: {
        ...demoApplication({ name: '', repoURL: REPO, branch: 'main' }),
        metadata: { generateName: 'preview-', namespace: 'argocd' },
      },
    });
    expect(created.status).toBe(201);
    expect(created.json.metadata.name).toMatch(/^preview-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(created.json.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.json.metadata.generation).toBe(1);
    expect(created.json.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const dup = await call('POST', APPS, { body: demoApplication({ name: 'guestbook', repoURL: REPO, branch: 'main' }) });
    expect(dup.status).toBe(409);
    expect(dup.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'applications.argoproj.io "guestbook" already exists',
      reason: 'AlreadyExists',
      details: { name: 'guestbook', group: 'argoproj.io', kind: 'applications' },
      code: 409,
    });

    const noNs = await call('POST', '/apis/argoproj.io/v1alpha1/namespaces/nowhere/applications', {
      body: demoApplication({ name: 'x', namespace: 'nowhere', repoURL: REPO, branch: 'main' }),
    });
    expect(noNs.status).toBe(404);
    expect(noNs.json).toMatchObject({
      message: 'namespaces "nowhere" not found',
      reason: 'NotFound',
      details: { name: 'nowhere', kind: 'namespaces' },
    });

    const mismatch = await call('POST', APPS, { body: demoApplication({ name: 'y', namespace: 'team-b', repoURL: REPO, branch: 'main' }) });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.message).toBe('the namespace of the provided object does not match the namespace sent on the request');

    const badName = await call('POST', APPS, { body: demoApplication({ name: 'Bad_Name', repoURL: REPO, branch: 'main' }) });
    expect(badName.status).toBe(422);
    expect(badName.json.details.causes[0]).toMatchObject({ reason: 'FieldValueInvalid', field: 'metadata.name' });

    const withRv = await call('POST', APPS, {
      body: { ...demoApplication({ name: 'z', repoURL: REPO, branch: 'main' }), metadata: { name: 'z', resourceVersion: '5' } },
    });
    expect(withRv.status).toBe(500);
    expect(withRv.json.message).toBe('resourceVersion should not be set on objects to be created');

    const wrongKind = await call('POST', APPS, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } } });
    expect(wrongKind.status).toBe(400);
  });

  it('updates with PUT only against the current resourceVersion', async () => {
    const cur = (await get(`${APPS}/guestbook`)).json;
    const noRv = structuredClone(cur);
    delete noRv.metadata.resourceVersion;
    const r1 = await call('PUT', `${APPS}/guestbook`, { body: noRv });
    expect(r1.status).toBe(422);
    expect(r1.json.message).toBe(
      'applications.argoproj.io "guestbook" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
    );

    const edited = structuredClone(cur);
    edited.spec.source.targetRevision = 'v2';
    const ok = await call('PUT', `${APPS}/guestbook`, { body: edited });
    expect(ok.status).toBe(200);
    expect(ok.json.metadata.generation).toBe(2);
    expect(ok.json.metadata.uid).toBe(cur.metadata.uid);

    const stale = await call('PUT', `${APPS}/guestbook`, { body: edited });
    expect(stale.status).toBe(409);
    expect(stale.json.reason).toBe('Conflict');

    const renamed = structuredClone(ok.json);
    renamed.metadata.name = 'other';
    expect((await call('PUT', `${APPS}/guestbook`, { body: renamed })).json.message).toBe(
      'the name of the object (other) does not match the name on the URL (guestbook)',
    );
    expect((await call('PUT', `${APPS}/absent`, { body: { ...ok.json, metadata: { ...ok.json.metadata, name: 'absent' } } })).status).toBe(
      404,
    );
  });

  it('bumps generation only for spec changes and leaves no-op writes without a new resourceVersion', async () => {
    const before = (await get(`${APPS}/guestbook`)).json;
    const labelled = (await mergePatch(`${APPS}/guestbook`, { metadata: { labels: { a: 'b' } } })).json;
    expect(Number(labelled.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    expect(labelled.metadata.generation).toBe(1);
    const same = (await mergePatch(`${APPS}/guestbook`, { metadata: { labels: { a: 'b' } } })).json;
    expect(same.metadata.resourceVersion).toBe(labelled.metadata.resourceVersion);
    const spec = (await mergePatch(`${APPS}/guestbook`, { spec: { source: { targetRevision: 'x' } } })).json;
    expect(spec.metadata.generation).toBe(2);
    // Server-owned fields in a patch are ignored, not applied.
    const tamper = (await mergePatch(`${APPS}/guestbook`, { metadata: { creationTimestamp: '2000-01-01T00:00:00Z', generation: 99 } }))
      .json;
    expect(tamper.metadata.creationTimestamp).toBe(before.metadata.creationTimestamp);
    expect(tamper.metadata.generation).toBe(2);
  });

  it('supports RFC 6902 ops and rejects malformed patches with 400', async () => {
    const ops = [
      { op: 'add', path: '/metadata/labels', value: { x: '1' } },
      { op: 'copy', from: '/spec/source/targetRevision', path: '/metadata/labels/rev' },
      { op: 'move', from: '/metadata/labels/x', path: '/metadata/labels/y' },
      { op: 'remove', path: '/spec/source/path' },
      { op: 'test', path: '/metadata/labels/rev', value: 'main' },
    ];
    const r = await call('PATCH', `${APPS}/guestbook`, { body: ops, contentType: 'application/json-patch+json' });
    expect(r.status).toBe(200);
    expect(r.json.metadata.labels).toEqual({ rev: 'main', y: '1' });
    expect(r.json.spec.source.path).toBeUndefined();
    const missing = await call('PATCH', `${APPS}/guestbook`, {
      body: [{ op: 'replace', path: '/spec/nothing/here', value: 1 }],
      contentType: 'application/json-patch+json',
    });
    expect(missing.status).toBe(422);
    const notArray = await call('PATCH', `${APPS}/guestbook`, { body: { op: 'add' }, contentType: 'application/json-patch+json' });
    expect(notArray.status).toBe(400);
    const notJson = await call('PATCH', `${APPS}/guestbook`, { body: '{nope', contentType: 'application/merge-patch+json' });
    expect(notJson.status).toBe(400);
  });

  it('refuses strategic merge patch on a custom resource with 415, like the real server', async () => {
    const r = await call('PATCH', `${APPS}/guestbook`, { body: { spec: {} }, contentType: 'application/strategic-merge-patch+json' });
    expect(r.status).toBe(415);
    expect(r.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
      reason: 'UnsupportedMediaType',
      code: 415,
    });
  });

  it('implements a simplified server-side apply (create, then merge; fieldManager required)', async () => {
    const app = demoApplication({ name: 'ssa', repoURL: REPO, branch: 'main' });
    const noManager = await call('PATCH', `${APPS}/ssa`, { body: app, contentType: 'application/apply-patch+yaml' });
    expect(noManager.status).toBe(422);
    const created = await call('PATCH', `${APPS}/ssa?fieldManager=test`, { body: app, contentType: 'application/apply-patch+yaml' });
    expect(created.status).toBe(201);
    const yaml = 'apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: ssa\nspec:\n  source:\n    targetRevision: dev\n';
    const updated = await call('PATCH', `${APPS}/ssa?fieldManager=test`, { body: yaml, contentType: 'application/apply-patch+yaml' });
    expect(updated.status).toBe(200);
    expect(updated.json.spec.source).toMatchObject({ targetRevision: 'dev', repoURL: REPO });
  });

  it('deletes with a Success Status, honours preconditions, and waits for finalizers', async () => {
    const cur = (await get(`${APPS}/guestbook`)).json;
    const pre = await call('DELETE', `${APPS}/guestbook`, { body: { preconditions: { uid: 'not-it' } } });
    expect(pre.status).toBe(409);
    expect(pre.json.message).toContain('Precondition failed: UID in precondition: not-it');
    const del = await call('DELETE', `${APPS}/guestbook`);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: 'guestbook', group: 'argoproj.io', kind: 'applications', uid: cur.metadata.uid },
    });
    expect((await get(`${APPS}/guestbook`)).status).toBe(404);

    const withFinalizer = demoApplication({ name: 'fin', repoURL: REPO, branch: 'main' }) as any;
    withFinalizer.metadata.finalizers = ['resources-finalizer.argocd.argoproj.io'];
    await call('POST', APPS, { body: withFinalizer });
    const marked = await call('DELETE', `${APPS}/fin`);
    expect(marked.status).toBe(200);
    expect(marked.json.metadata.deletionTimestamp).toBeDefined();
    expect((await get(`${APPS}/fin`)).status).toBe(200);
    const events = await watch(
      `${APPS}?watch=1&fieldSelector=metadata.name%3Dfin`,
      (e) => e.some((x) => x.type === 'DELETED'),
      async () => {
        await mergePatch(`${APPS}/fin`, { metadata: { finalizers: null } });
      },
    );
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
    expect((await get(`${APPS}/fin`)).status).toBe(404);
  });

  it('does not persist dry runs', async () => {
    const r = await call('POST', `${APPS}?dryRun=All`, { body: demoApplication({ name: 'dry', repoURL: REPO, branch: 'main' }) });
    expect(r.status).toBe(201);
    expect((await get(`${APPS}/dry`)).status).toBe(404);
    const p = await call('PATCH', `${APPS}/guestbook?dryRun=All`, {
      body: { spec: { project: 'p' } },
      contentType: 'application/merge-patch+json',
    });
    expect(p.json.spec.project).toBe('p');
    expect((await get(`${APPS}/guestbook`)).json.spec.project).toBe('default');
  });

  it('cascades a namespace delete to its contents', async () => {
    const del = await call('DELETE', '/api/v1/namespaces/team-b');
    expect(del.status).toBe(200);
    expect((await get('/apis/argoproj.io/v1alpha1/namespaces/team-b/applications/billing')).status).toBe(404);
    expect((await get('/api/v1/namespaces/team-b')).status).toBe(404);
    const created = await call('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-c' } },
    });
    expect(created.status).toBe(201);
    expect(created.json.status.phase).toBe('Active');
  });

  it('answers methods a path does not support with 405', async () => {
    expect((await call('PUT', APPS, { body: {} })).status).toBe(405);
    expect((await call('POST', '/apis/argoproj.io/v1alpha1/applications', { body: {} })).status).toBe(405);
  });
});

describe('watch', () => {
  it('starts from current state without a resourceVersion and ends at timeoutSeconds', async () => {
    const events = await watch(`${APPS}?watch=true&timeoutSeconds=1`, () => false);
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED guestbook']);
  });

  it('sends initial events then an initial-events-end BOOKMARK', async () => {
    const events = await watch(
      `/apis/argoproj.io/v1alpha1/applications?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`,
      (e) => e.some((x) => x.type === 'BOOKMARK'),
    );
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'ADDED', 'BOOKMARK']);
    expect(events[2].object.metadata.annotations).toEqual({ 'k8s.io/initial-events-end': 'true' });
  });

  it('turns label changes into ADDED/DELETED for a selector watch', async () => {
    const rv = (await get(APPS)).json.metadata.resourceVersion;
    const events = await watch(
      `${APPS}?watch=1&resourceVersion=${rv}&labelSelector=pinned%3Dyes`,
      (e) => e.length >= 2,
      async () => {
        await mergePatch(`${APPS}/guestbook`, { metadata: { labels: { pinned: 'yes' } } });
        await mergePatch(`${APPS}/guestbook`, { spec: { source: { targetRevision: 'abc' } } });
        await mergePatch(`${APPS}/guestbook`, { metadata: { labels: { pinned: 'no' } } });
      },
    );
    expect(events.slice(0, 2).map((e) => e.type)).toEqual(['ADDED', 'MODIFIED']);
    const more = await watch(`${APPS}?watch=1&resourceVersion=${rv}&labelSelector=pinned%3Dyes`, (e) => e.length >= 3);
    expect(more.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('serves the deprecated /watch/ path for one object', async () => {
    const rv = (await get(APPS)).json.metadata.resourceVersion;
    const events = await watch(
      `/apis/argoproj.io/v1alpha1/watch/namespaces/argocd/applications/guestbook?resourceVersion=${rv}`,
      (e) => e.length >= 1,
      async () => {
        await call('POST', APPS, { body: demoApplication({ name: 'unrelated', repoURL: REPO, branch: 'main' }) });
        await mergePatch(`${APPS}/guestbook`, { spec: { source: { targetRevision: 'w' } } });
      },
    );
    expect(events[0]).toMatchObject({ type: 'MODIFIED', object: { metadata: { name: 'guestbook' } } });
  });

  it('answers a too-old resourceVersion with an ERROR event carrying 410 Expired', async () => {
    await server.close();
    server = await createSandboxApiServer({
      watchHistory: 1,
      seed: [demoApplication({ name: 'guestbook', repoURL: REPO, branch: 'main' })],
    });
    const rv = (await get(APPS)).json.metadata.resourceVersion;
    await mergePatch(`${APPS}/guestbook`, { spec: { project: 'a' } });
    await mergePatch(`${APPS}/guestbook`, { spec: { project: 'b' } });
    const events = await watch(`${APPS}?watch=1&resourceVersion=${rv}`, () => false);
    expect(events).toHaveLength(1);
    expect(events[0].type).toBe('ERROR');
    expect(events[0].object).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `too old resource version: ${rv} (${Number(rv) + 1})`,
      reason: 'Expired',
      code: 410,
    });
  });
});

describe('options', () => {
  it('refuses seeds it cannot serve, with codes', async () => {
    await expect(
      createSandboxApiServer({ seed: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }] }),
    ).rejects.toMatchObject({
      code: 'UNKNOWN_KIND',
    });
    const bad = demoApplication({ name: 'b', repoURL: REPO, branch: 'main' }) as any;
    delete bad.spec.destination;
    await expect(createSandboxApiServer({ seed: [bad] })).rejects.toMatchObject({ code: 'INVALID_SEED' });
  });

  it('renders a kubeconfig for a chosen context and namespace', () => {
    const y = server.kubeconfigYaml({ context: 'ctx', namespace: 'team-b', scheme: 'http' });
    expect(y).toContain('current-context: "ctx"');
    expect(y).toContain('namespace: "team-b"');
    expect(y).toContain(`server: "${server.url}"`);
    expect(y).not.toContain('certificate-authority-data');
  });
});

describe('test controls', () => {
  it('logs requests and keeps count-limited and unlimited faults until cleared', async () => {
    server.injectFault({ method: 'GET', pathIncludes: 'guestbook', status: 500, count: Infinity, reason: 'InternalError' });
    for (let i = 0; i < 3; i++) expect((await get(`${APPS}/guestbook`)).status).toBe(500);
    expect((await get(APPS)).status).toBe(200);
    server.clearFaults();
    expect((await get(`${APPS}/guestbook`)).status).toBe(200);
    server.injectFault({ status: 429 });
    const limited = await get(APPS);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    const log = server.requests();
    expect(log.at(-1)).toEqual({ method: 'GET', path: APPS, query: '', status: 429 });
    expect(log.filter((r) => r.status === 500)).toHaveLength(3);
  });

  it('denies by namespace only where the rule says so', async () => {
    server.deny({ namespace: 'team-b' });
    expect((await get('/apis/argoproj.io/v1alpha1/namespaces/team-b/applications')).status).toBe(403);
    expect((await get(APPS)).status).toBe(200);
    const r = await get('/apis/argoproj.io/v1alpha1/namespaces/team-b/applications/billing');
    expect(r.json.message).toBe(
      'applications.argoproj.io "billing" is forbidden: User "system:serviceaccount:argocd:gitops-gate" cannot get resource "applications" in API group "argoproj.io" in the namespace "team-b"',
    );
  });

  it('serves a kind registered later, with a status subresource', async () => {
    const gatePolicy: ResourceKind = {
      group: 'gitops-gate.io',
      version: 'v1alpha1',
      kind: 'GatePolicy',
      plural: 'gatepolicies',
      singular: 'gatepolicy',
      namespaced: true,
      shortNames: ['gp'],
      statusSubresource: true,
      validate: (o) => ((o as any).spec?.branches ? [] : ['spec.branches: Required value']),
    };
    server.registerKind(gatePolicy);
    const base = '/apis/gitops-gate.io/v1alpha1/namespaces/argocd/gatepolicies';
    expect((await get('/apis/gitops-gate.io/v1alpha1')).json.resources.map((r: any) => r.name)).toEqual([
      'gatepolicies',
      'gatepolicies/status',
    ]);
    const body = {
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'p' },
      spec: { branches: ['main'] },
      status: { ignored: true },
    };
    const created = await call('POST', base, { body });
    expect(created.status).toBe(201);
    expect(created.json.status).toBeUndefined();
    const invalid = await call('POST', base, { body: { ...body, metadata: { name: 'q' }, spec: {} } });
    expect(invalid.status).toBe(422);
    expect(invalid.json.message).toBe('GatePolicy.gitops-gate.io "q" is invalid: spec.branches: Required value');
    const st = await mergePatch(`${base}/p/status`, { status: { observed: 1 }, spec: { branches: ['ignored'] } });
    expect(st.json.status).toEqual({ observed: 1 });
    expect(st.json.spec.branches).toEqual(['main']);
    expect(st.json.metadata.generation).toBe(1);
    const main = await mergePatch(`${base}/p`, { status: { observed: 2 }, spec: { branches: ['dev'] } });
    expect(main.json.status).toEqual({ observed: 1 });
    expect(main.json.metadata.generation).toBe(2);
  });
});
