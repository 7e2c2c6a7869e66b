/**
 * Custom kinds built from CRD files behave as a real apiserver serving that CRD: unknown fields pruned (refused under
 * fieldValidation=Strict, warned about under Warn), nulls dropped, defaults written, schema and CEL rules enforced.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duplicateJsonFields } from './http-util.js';
import {
  clusterGatePolicyKind,
  createSandboxApiServer,
  demoApplication,
  gatePolicyKind,
  kindFromCrd,
  type SandboxApiServer,
} from './index.js';
import { argoApplicationKind } from './kinds.js';

const GP = '/apis/gitops-gate.io/v1alpha1/namespaces/argocd/gatepolicies';
const APPS = '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications';

let server: SandboxApiServer;

beforeAll(async () => {
  server = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind, clusterGatePolicyKind], tls: false });
});
afterAll(async () => {
  await server.close();
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': contentType },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, warning: res.headers.get('warning'), body: (await res.json()) as any };
}

let n = 0;
function policy(spec: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  n += 1;
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name: `p${n}` },
    spec: {
      repository: 'https://github.com/org/app',
      branches: ['main'],
      commits: { gitsign: [{ identity: 'alice@example.com', issuer: 'https://accounts.google.com' }] },
      ...spec,
    },
    ...extra,
  };
}

describe('kindFromCrd', () => {
  it('takes names, scope, printer columns and the status subresource from the CRD files', () => {
    const { group, version, kind, plural, singular, namespaced, shortNames, categories, statusSubresource } = gatePolicyKind;
    expect([group, version, kind, plural, singular, namespaced, statusSubresource]).toEqual([
      'gitops-gate.io',
      'v1alpha1',
      'GatePolicy',
      'gatepolicies',
      'gatepolicy',
      true,
      true,
    ]);
    expect([shortNames, categories]).toEqual([['gp'], ['gitops-gate']]);
    expect(gatePolicyKind.printerColumns?.map((c) => c.jsonPath)).toEqual([
      '.spec.mode',
      '.status.conditions[?(@.type=="Ready")].status',
      '.metadata.creationTimestamp',
    ]);
    expect(clusterGatePolicyKind).toMatchObject({
      kind: 'ClusterGatePolicy',
      plural: 'clustergatepolicies',
      namespaced: false,
      shortNames: ['cgp'],
    });
  });

  it('refuses what is not a servable CRD, naming the problem', () => {
    expect(() => kindFromCrd({ kind: 'Deployment' })).toThrow(/not a CustomResourceDefinition/);
    const crd = readFileSync(new URL('../../../../deploy/base/crds/gatepolicy.yaml', import.meta.url), 'utf8');
    expect(() => kindFromCrd(crd, 'v9')).toThrow(/no version v9/);
    expect(() => kindFromCrd(crd.replace('scope: Namespaced', 'scope: Global'))).toThrow(/spec.scope/);
  });
});

describe('GatePolicy writes as a real apiserver applies the CRD', () => {
  it('writes the CRD defaults into the object: an omitted requireProvenance means provenance is required', async () => {
    const p = policy({
      images: [
        { repository: 'ghcr.io/org/app', keyless: [{ identity: 'https://x/wf', issuer: 'https://token.actions.githubusercontent.com' }] },
      ],
    });
    const created = await call('POST', GP, p);
    expect(created.status).toBe(201);
    expect(created.body.spec).toMatchObject({ mode: 'Enforce', selector: {}, commits: { requiredSigners: 1 } });
    expect(created.body.spec.images[0].requireProvenance).toBe(true);
    const got = await call('GET', `${GP}/${p.metadata.name}`);
    expect(got.body.spec.images[0].requireProvenance).toBe(true);
  });

  it('fieldValidation=Strict refuses unknown and duplicate fields with 400 naming them', async () => {
    const typo = policy();
    (typo.spec.commits as Record<string, unknown>)['gitsing'] = [];
    const r = await call('POST', `${GP}?fieldValidation=Strict`, { ...typo, metadata: { ...typo.metadata, color: 'red' } });
    expect(r.status).toBe(400);
    expect(r.body.reason).toBe('BadRequest');
    expect(r.body.message).toBe(
      'GatePolicy in version "v1alpha1" cannot be handled as a GatePolicy: strict decoding error: unknown field "metadata.color", unknown field "spec.commits.gitsing"',
    );
    const dup = JSON.stringify(policy({ mode: 'Audit' })).replace('"mode":"Audit"', '"mode":"Audit","mode":"Enforce"');
    const d = await call('POST', `${GP}?fieldValidation=Strict`, dup);
    expect(d.status).toBe(400);
    expect(d.body.message).toContain('duplicate field "spec.mode"');
  });

  it('fieldValidation=Warn (the server default) drops unknown fields with a Warning header; Ignore drops them silently', async () => {
    for (const q of ['?fieldValidation=Warn', '']) {
      const p = policy({ colour: 'red' });
      const r = await call('POST', `${GP}${q}`, p);
      expect(r.status).toBe(201);
      expect(r.warning).toBe('299 - "unknown field \\"spec.colour\\""');
      expect(r.body.spec.colour).toBeUndefined();
    }
    const p = policy({ colour: 'red' });
    const r = await call('POST', `${GP}?fieldValidation=Ignore`, p);
    expect(r.status).toBe(201);
    expect(r.warning).toBeNull();
    expect(r.body.spec.colour).toBeUndefined();
    expect((await call('POST', `${GP}?fieldValidation=Loose`, policy())).status).toBe(400);
  });

  it('prunes unknown fields on merge patches too, without bumping generation', async () => {
    const p = policy();
    await call('POST', GP, p);
    const strict = await call(
      'PATCH',
      `${GP}/${p.metadata.name}?fieldValidation=Strict`,
      { spec: { commits: { gpgg: [] } } },
      'application/merge-patch+json',
    );
    expect(strict.status).toBe(400);
    const warn = await call('PATCH', `${GP}/${p.metadata.name}`, { spec: { commits: { gpgg: [] } } }, 'application/merge-patch+json');
    expect(warn.status).toBe(200);
    expect(warn.warning).toContain('unknown field \\"spec.commits.gpgg\\"');
    expect(warn.body.metadata.generation).toBe(1);
  });

  it('drops nulls of non-nullable fields, then defaults them', async () => {
    const r = await call('POST', GP, policy({ mode: null, images: null }, { metadata: { name: 'nulls', labels: null } }));
    expect(r.status).toBe(201);
    expect('labels' in r.body.metadata).toBe(false);
    expect(r.body.spec.mode).toBe('Enforce');
    expect('images' in r.body.spec).toBe(false);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a missing repository', { repository: undefined }, 'spec.repository: Required value'],
    ['an unknown mode', { mode: 'Warn' }, 'spec.mode: Unsupported value: "Warn": supported values: "Enforce", "Audit"'],
    [
      'a repository with .git (CEL)',
      { repository: 'https://github.com/org/app.git' },
      'spec.repository: Invalid value: "string": repository must be normalised',
    ],
    ['an ssh repository URL (pattern)', { repository: 'git@github.com:org/app' }, "spec.repository in body should match '"],
    ['no branches', { branches: [] }, 'spec.branches in body should have at least 1 items'],
    ['a branch listed twice (set)', { branches: ['main', 'main'] }, 'spec.branches[1]: Duplicate value: "main"'],
    ['no signers (CEL)', { commits: {} }, 'spec.commits: Invalid value: "object": commits needs at least one of gitsign, ssh or gpg'],
    [
      'two required signers',
      { commits: { requiredSigners: 2, ssh: { allowedSigners: 'a@b ssh-ed25519 AAAA' } } },
      'spec.commits.requiredSigners: Unsupported value: 2',
    ],
    [
      'a v3 short GPG fingerprint',
      { commits: { gpg: [{ fingerprint: 'ABCDEF', publicKey: '-----BEGIN PGP PUBLIC KEY BLOCK-----' }] } },
      'spec.commits.gpg[0].fingerprint in body should match',
    ],
    [
      'a GPG key without publicKey',
      { commits: { gpg: [{ fingerprint: 'A'.repeat(40) }] } },
      'spec.commits.gpg[0].publicKey: Required value',
    ],
    [
      'a malformed date',
      { commits: { gpg: [{ fingerprint: 'A'.repeat(40), publicKey: 'BEGIN PGP PUBLIC KEY BLOCK', validUntil: 'next year' }] } },
      'must be of type date-time',
    ],
    [
      'a key-only image with the default requireProvenance',
      { images: [{ repository: 'ghcr.io/org/app', keys: [{ publicKeyPem: '-----BEGIN PUBLIC KEY-----' }] }] },
      'requireProvenance needs a keyless builder identity',
    ],
    [
      'a branch of the wrong type',
      { branches: [5] },
      'spec.branches[0]: Invalid value: "integer": spec.branches[0] in body must be of type string: "integer"',
    ],
  ])('refuses %s with 422 worded like the apiserver', async (_what, spec, message) => {
    const r = await call('POST', GP, policy(spec));
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe('Invalid');
    expect(r.body.message).toContain(message);
  });

  it('accepts a 64-hex (v5) fingerprint and a key-only image that opts out of provenance', async () => {
    const r = await call(
      'POST',
      GP,
      policy({
        commits: { gpg: [{ fingerprint: 'a'.repeat(64), publicKey: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n…' }] },
        images: [{ repository: 'ghcr.io/org/app', keys: [{ publicKeyPem: '-----BEGIN PUBLIC KEY-----\n…' }], requireProvenance: false }],
      }),
    );
    expect(r.status).toBe(201);
    expect(r.body.spec.commits.gpg[0]).toMatchObject({ fingerprint: 'a'.repeat(64), revoked: false });
  });
});

describe('Argo CD Applications are pruned like the CRD Argo CD ships', () => {
  it('drops unknown fields and nulls; Strict refuses a misspelt field', async () => {
    const app = demoApplication({ name: 'shop', repoURL: 'https://github.com/org/shop.git', branch: 'main' }) as any;
    app.spec.source.targetRevison = 'v1'; // misspelt: a real server never stores it
    app.spec.source.path = null;
    const strict = await call('POST', `${APPS}?fieldValidation=Strict`, app);
    expect(strict.status).toBe(400);
    expect(strict.body.message).toContain('unknown field "spec.source.targetRevison"');
    const r = await call('POST', APPS, app);
    expect(r.status).toBe(201);
    expect(r.warning).toContain('spec.source.targetRevison');
    expect(r.body.spec.source).toEqual({ repoURL: 'https://github.com/org/shop.git', targetRevision: 'main' });
    // Fields of free-form parts (Helm valuesObject) are kept, as x-kubernetes-preserve-unknown-fields says.
    const helm = demoApplication({ name: 'helm', repoURL: 'https://github.com/org/shop.git', branch: 'main' }) as any;
    helm.spec.source.helm = { valuesObject: { anything: { goes: 1 } } };
    expect((await call('POST', APPS, helm)).body.spec.source.helm.valuesObject).toEqual({ anything: { goes: 1 } });
  });
});

describe('duplicateJsonFields', () => {
  it('names keys repeated within one object, at any depth, and nothing else', () => {
    expect(duplicateJsonFields('{"a":1,"b":{"c":[{"d":1,"d":2}],"c2":"x"},"a":3}')).toEqual(['b.c[0].d', 'a']);
    expect(duplicateJsonFields('{"a":{"x":1},"b":{"x":"\\"x\\""},"c":[{"x":1},{"x":2}]}')).toEqual([]);
  });
});
