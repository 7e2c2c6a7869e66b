/**
 * Validating admission webhooks in the sandbox, against a recording HTTPS webhook: the AdmissionReview request shape
 * kube-apiserver sends, rule/objectSelector matching, UPDATE with oldObject, warnings, dryRun, and the answers that
 * must fail closed (wrong uid, non-200).
 */
import { createServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSandboxApiServer,
  createServingCertificate,
  validatingWebhookConfigurationKind,
  workloadKinds,
  type SandboxApiServer,
} from './index.js';

const cert = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });
let server: SandboxApiServer;
let hook: Server;
let hookUrl = '';
const seen: Record<string, any>[] = [];
/** What the recording webhook answers: deny Pods labelled deny=yes, echo another uid for bad-uid=yes, 500 for boom=yes. */
function answer(review: Record<string, any>): { status: number; body: unknown } {
  const req = review.request;
  const labels = req.object?.metadata?.labels ?? {};
  if (labels.boom === 'yes') return { status: 500, body: {} };
  const uid = labels['bad-uid'] === 'yes' ? 'other' : req.uid;
  const allowed = labels.deny !== 'yes';
  return {
    status: 200,
    body: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid,
        allowed,
        warnings: ['recorded'],
        ...(allowed ? {} : { status: { code: 403, reason: 'Forbidden', message: 'labelled deny' } }),
      },
    },
  };
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; warning: string | null }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${server.token}`,
      'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json(), warning: res.headers.get('warning') };
}
const pod = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels },
  spec: { containers: [{ name: 'c', image: 'x:1' }] },
});

beforeAll(async () => {
  hook = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const review = JSON.parse(text) as Record<string, any>;
      seen.push(review);
      const a = answer(review);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `https://localhost:${(hook.address() as { port: number }).port}/`;
  server = await createSandboxApiServer({
    kinds: [validatingWebhookConfigurationKind, ...workloadKinds],
    namespaces: ['default', 'kube-system', 'shop'],
  });
  const created = await call('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'rec' },
    webhooks: [
      {
        name: 'rec.example.com',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 3,
        clientConfig: { url: hookUrl, caBundle: Buffer.from(cert.caPem).toString('base64') },
        objectSelector: { matchExpressions: [{ key: 'skip', operator: 'DoesNotExist' }] },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'], scope: 'Namespaced' }],
      },
    ],
  });
  expect(created.status).toBe(201);
});
afterAll(async () => {
  await server?.close();
  hook?.close();
});

describe('validating admission webhooks', () => {
  it('sends the AdmissionReview request kube-apiserver sends, and passes warnings on', async () => {
    seen.length = 0;
    const r = await call('POST', '/api/v1/namespaces/shop/pods', pod('a'));
    expect(r.status).toBe(201);
    expect(r.warning).toContain('recorded');
    const req = seen[0]?.request;
    expect(seen[0]).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(req).toMatchObject({
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      name: 'a',
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: expect.any(String) },
      oldObject: null,
      dryRun: false,
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'shop' } },
    });
    expect(req.uid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('calls on UPDATE with oldObject, and a denial leaves the object unchanged', async () => {
    seen.length = 0;
    const r = await call('PATCH', '/api/v1/namespaces/shop/pods/a', { metadata: { labels: { deny: 'yes' } } });
    expect(r.status).toBe(403);
    expect(r.json.message).toBe('admission webhook "rec.example.com" denied the request: labelled deny');
    expect(seen[0]?.request).toMatchObject({
      operation: 'UPDATE',
      oldObject: { metadata: { name: 'a' } },
      object: { metadata: { labels: { deny: 'yes' } } },
    });
    expect((await call('GET', '/api/v1/namespaces/shop/pods/a')).json.metadata.labels?.deny).toBeUndefined();
  });

  it('denies a create and stores nothing; dryRun reaches the webhook as dryRun', async () => {
    expect((await call('POST', '/api/v1/namespaces/shop/pods', pod('b', { deny: 'yes' }))).status).toBe(403);
    expect((await call('GET', '/api/v1/namespaces/shop/pods/b')).status).toBe(404);
    seen.length = 0;
    expect((await call('POST', '/api/v1/namespaces/shop/pods?dryRun=All', pod('c'))).status).toBe(201);
    expect(seen[0]?.request.dryRun).toBe(true);
  });

  it('objectSelector: objects it does not select are not sent', async () => {
    seen.length = 0;
    expect((await call('POST', '/api/v1/namespaces/shop/pods', pod('d', { skip: 'x', deny: 'yes' }))).status).toBe(201);
    expect(seen).toHaveLength(0);
  });

  it('fails closed on an answer for another uid, or a non-200', async () => {
    const uid = await call('POST', '/api/v1/namespaces/shop/pods', pod('e', { 'bad-uid': 'yes' }));
    expect(uid.status).toBe(500);
    expect(uid.json.message).toMatch(/failed calling webhook "rec.example.com": expected response.uid/);
    expect((await call('POST', '/api/v1/namespaces/shop/pods', pod('f', { boom: 'yes' }))).status).toBe(500);
  });
});
