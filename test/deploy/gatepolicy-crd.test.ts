/**
 * The GatePolicy CRD: a structural schema the API server accepts, and validation that accepts the documented
 * example and rejects the mistakes it is there to catch.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { POLICY_CRD_FILES, renderPolicyCrdYaml, toStructural, type PolicyCrdScope } from '@gitops-gate/policy';
import { Application } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application';
import { beforeAll, describe, expect, it } from 'vitest';
import { admitVap, update } from './lib/admission.js';
import { customResourceErrors, eachNode, storageSchema, unparsableRules, type Schema } from './lib/crd.js';
import { DEPLOY, loadYamlFile, one, OVERLAYS, renderOverlay, type K8sObject } from './lib/render.js';

let crd: K8sObject;
let example: K8sObject;

beforeAll(() => {
  crd = one(renderOverlay('production'), 'CustomResourceDefinition', 'gatepolicies.gitops-gate.io');
  [example] = loadYamlFile(join(DEPLOY, 'examples/gatepolicy.yaml')) as [K8sObject];
});

const check = (obj: K8sObject) => customResourceErrors(crd, structuredClone(obj));
const variant = (f: (spec: K8sObject['spec']) => void): K8sObject => {
  const copy = structuredClone(example);
  f(copy.spec);
  return copy;
};

describe('GatePolicy CRD definition', () => {
  it.each(Object.entries(POLICY_CRD_FILES))('%s CRD is the one generated from the policy model (npm run gen:crds)', (scope, file) => {
    expect(readFileSync(join(DEPLOY, '..', file), 'utf8')).toBe(renderPolicyCrdYaml(scope as PolicyCrdScope));
  });

  it('translates the model to a structural schema, and refuses constructs it has no translation for', () => {
    expect(toStructural({ type: 'number', const: 1, additionalProperties: false, $schema: 'x' })).toEqual({ type: 'number', enum: [1] });
    expect(toStructural({ type: 'string', format: 'date-time', pattern: '^\\d' })).toEqual({ type: 'string', format: 'date-time' });
    expect(toStructural({ type: 'string', format: 'uri' })).toEqual({ type: 'string' });
    expect(() => toStructural({ type: 'object', properties: { a: { anyOf: [{ type: 'string' }, { type: 'number' }] } } })).toThrow('spec.a: no structural-schema translation for anyOf');
  });

  it('ClusterGatePolicy has the same schema as GatePolicy, cluster-scoped', () => {
    const cluster = one(renderOverlay('production'), 'CustomResourceDefinition', 'clustergatepolicies.gitops-gate.io');
    expect(cluster.spec.scope).toBe('Cluster');
    expect(storageSchema(cluster)).toEqual(storageSchema(crd));
  });

  it('is in every overlay', () => {
    for (const o of OVERLAYS) expect(one(renderOverlay(o), 'CustomResourceDefinition', 'gatepolicies.gitops-gate.io')).toEqual(crd);
  });

  it('defines gitops-gate.io/v1alpha1 GatePolicy, namespaced, with a status subresource', () => {
    expect(crd.spec.group).toBe('gitops-gate.io');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: 'GatePolicy', plural: 'gatepolicies', singular: 'gatepolicy' });
    expect(crd.spec.versions).toHaveLength(1);
    const [v] = crd.spec.versions;
    expect(v).toMatchObject({ name: 'v1alpha1', served: true, storage: true, subresources: { status: {} } });
  });

  it('prints Mode, Ready and Age', () => {
    expect(crd.spec.versions[0].additionalPrinterColumns).toEqual([
      { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  it('has a structural schema: a type everywhere, no $ref, bounded lists and strings (CEL cost)', () => {
    const problems: string[] = [];
    eachNode(storageSchema(crd), (node: Schema, path) => {
      if (!node.type && !node['x-kubernetes-int-or-string'] && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${path}: no type`);
      if ('$ref' in node) problems.push(`${path}: $ref`);
      if (node.type === 'array' && node.maxItems === undefined) problems.push(`${path}: array without maxItems`);
      const exempt = ['.apiVersion', '.kind'].includes(path) || node.enum || node.format;
      if (node.type === 'string' && node.maxLength === undefined && !exempt) problems.push(`${path}: string without maxLength`);
      if (node.properties && node.additionalProperties !== undefined) problems.push(`${path}: properties and additionalProperties`);
    });
    const meta = storageSchema(crd).properties!.metadata!;
    expect(meta).toEqual({ type: 'object' });
    expect(problems).toEqual([]);
  });

  it('has CEL rules that parse', () => {
    expect(unparsableRules(storageSchema(crd))).toEqual([]);
  });

  it('keys status conditions by type', () => {
    const conditions = storageSchema(crd).properties!.status!.properties!.conditions!;
    expect(conditions['x-kubernetes-list-type']).toBe('map');
    expect(conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(conditions.items!.required).toEqual(expect.arrayContaining(['type', 'status']));
  });
});

describe('GatePolicy validation', () => {
  it('accepts the documented example (deploy/examples/gatepolicy.yaml)', () => {
    expect(check(example)).toEqual([]);
  });

  it('defaults mode to Enforce, requiredSigners to 1 and an image\'s requireProvenance to true (the parser\'s defaults)', () => {
    const minimal: K8sObject = {
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'min', namespace: 'argocd' },
      spec: {
        repository: 'https://github.com/org/repo',
        branches: ['main'],
        commits: { gitsign: [{ identity: 'alice@example.com', issuer: 'https://accounts.google.com' }] },
      },
    };
    expect(customResourceErrors(crd, minimal)).toEqual([]);
    expect(minimal.spec.mode).toBe('Enforce');
    expect(minimal.spec.commits.requiredSigners).toBe(1);
    const image = structuredClone(example);
    delete image.spec.images[0].requireProvenance;
    expect(check(image)).toEqual([]);
    const stored = structuredClone(image);
    customResourceErrors(crd, stored);
    expect(stored.spec.images[0].requireProvenance).toBe(true);
  });

  it('accepts a status with conditions and observedGeneration', () => {
    const withStatus = structuredClone(example);
    withStatus.status = {
      observedGeneration: 3,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Valid', message: '2 signers', lastTransitionTime: '2026-01-02T03:04:05Z', observedGeneration: 3 },
      ],
    };
    expect(check(withStatus)).toEqual([]);
  });

  it.each<[string, (s: K8sObject['spec']) => void, string]>([
    ['both identity and identityRegExp', (s) => (s.commits.gitsign[0].identityRegExp = '^a$'), 'exactly one of identity or identityRegExp'],
    ['neither identity nor identityRegExp', (s) => delete s.commits.gitsign[0].identity, 'exactly one of identity or identityRegExp'],
    ['an unanchored identityRegExp', (s) => (s.commits.gitsign[1].identityRegExp = 'github.com/example-org/'), 'anchored'],
    ['an image identity with both', (s) => (s.images[0].keyless[0].identity = 'x'), 'exactly one of identity or identityRegExp'],
    ['a non-https issuer', (s) => (s.commits.gitsign[0].issuer = 'accounts.google.com'), "should match '^https://'"],
    ['no signers at all', (s) => (s.commits = { requiredSigners: 1 }), 'at least one of gitsign, ssh or gpg'],
    ['more than one required signer (a commit carries one signature)', (s) => (s.commits.requiredSigners = 2), 'Unsupported value: 2: supported values: 1'],
    ['a short GPG fingerprint', (s) => (s.commits.gpg[0].fingerprint = 'ABCDEF'), 'fingerprint in body should match'],
    ['a 41-hex GPG fingerprint', (s) => (s.commits.gpg[0].fingerprint = 'A'.repeat(41)), 'fingerprint in body should match'],
    ['a GPG key without its public key', (s) => delete s.commits.gpg[0].publicKey, 'spec.commits.gpg[0].publicKey: Required value'],
    ['validFrom after validUntil', (s) => (s.commits.gpg[0].validFrom = '2028-01-01T00:00:00Z'), 'validFrom must be before validUntil'],
    ['a malformed date', (s) => (s.commits.gpg[0].validUntil = 'next year'), 'must be of type date-time'],
    ['an unknown mode', (s) => (s.mode = 'Warn'), 'Unsupported value: "Warn"'],
    ['a repository with .git', (s) => (s.repository = 'https://github.com/example-org/shop-deploy.git'), 'must be normalised'],
    ['a repository with a trailing slash', (s) => (s.repository = 'https://github.com/example-org/shop-deploy/'), 'must be normalised'],
    ['an ssh repository URL', (s) => (s.repository = 'git@github.com:example-org/shop-deploy'), 'spec.repository in body should match'],
    ['no branches', (s) => (s.branches = []), 'should have at least 1 items'],
    ['an image without keys or identities', (s) => (s.images[0] = { repository: 'ghcr.io/org/app' }), 'at least one keyless identity or key'],
    [
      'provenance without a builder identity',
      (s) => (s.images[0] = { repository: 'ghcr.io/org/app', keys: [{ publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----' }], requireProvenance: true }),
      'requireProvenance needs a keyless builder identity',
    ],
    [
      'a key-only image that leaves requireProvenance at its default (true)',
      (s) => (s.images[0] = { repository: 'ghcr.io/org/app', keys: [{ publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----' }] }),
      'requireProvenance needs a keyless builder identity',
    ],
    ['a key that is not PEM', (s) => (s.images[0].keys = [{ publicKeyPem: 'ssh-ed25519 AAAA' }]), 'publicKeyPem in body should match'],
    ['an image reference with a tag', (s) => (s.images[0].repository = 'ghcr.io/org/app:1.0'), 'spec.images[0].repository in body should match'],
    ['a misspelt field', (s) => (s.commits.gitsing = s.commits.gitsign), 'unknown field "spec.commits.gitsing"'],
  ])('rejects %s', (_what, mutate, message) => {
    const errors = check(variant(mutate));
    expect(errors.join('\n')).toContain(message);
  });
});

describe('examples', () => {
  it('the example Application is a valid Argo CD Application that opts in, and the pin guard protects it', () => {
    const [app] = loadYamlFile(join(DEPLOY, 'examples/application.yaml')) as [K8sObject];
    expect(() => new Application(app as never).validate()).not.toThrow();
    expect(app.metadata.annotations['gitops-gate.io/branch']).toBe('main');
    const vap = one(renderOverlay('production'), 'ValidatingAdmissionPolicy', 'gitops-gate-pin-guard');
    const moved = structuredClone(app);
    moved.spec.source.targetRevision = 'main';
    expect(admitVap(vap, update('bob@example.com'), moved, app).allowed).toBe(false);
    // and the example GatePolicy governs it
    expect(example.spec.repository).toBe(app.spec.source.repoURL);
    expect(example.spec.branches).toContain(app.metadata.annotations['gitops-gate.io/branch']);
    expect(app.metadata.labels).toMatchObject(example.spec.selector.matchLabels);
  });
});
