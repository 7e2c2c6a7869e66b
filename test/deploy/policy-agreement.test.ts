/**
 * The CRDs and the gate's parser agree: every policy we show or ship (deploy/examples, the GatePolicy snippets in
 * README.md and deploy/README.md, the fixture policies tests and `npm start` seed) goes through the CRD as a real API
 * server applies it (kubectl's fieldValidation=Strict, then pruning, defaults, validation, CEL) and then through the
 * parser. Both must accept, and what the parser reads must equal the stored object on every field, so a policy means
 * the same in production as in the tests.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, gatePolicySpec } from '@gitops-gate/policy';
import { createDemoFixture } from '@gitops-gate/local-stack';
import { loadAll } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { admitCustomResource } from './lib/crd.js';
import { DEPLOY, loadYamlFile, one, renderOverlay, type K8sObject } from './lib/render.js';

const CRDS: Record<string, K8sObject> = {
  GatePolicy: one(renderOverlay('production'), 'CustomResourceDefinition', 'gatepolicies.gitops-gate.io'),
  ClusterGatePolicy: one(renderOverlay('production'), 'CustomResourceDefinition', 'clustergatepolicies.gitops-gate.io'),
};
const isPolicy = (d: unknown): d is K8sObject => typeof d === 'object' && d !== null && ((d as K8sObject).kind ?? '') in CRDS;

/** GatePolicy documents in the ```yaml blocks of a Markdown file. */
function markdownPolicies(file: string): K8sObject[] {
  const text = readFileSync(file, 'utf8');
  const out: K8sObject[] = [];
  for (const m of text.matchAll(/```yaml\n([\s\S]*?)```/g)) loadAll(m[1]!, (d) => isPolicy(d) && out.push(d));
  return out;
}

const fixtureDir = mkdtempSync(join(tmpdir(), 'gg-agreement-'));
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));
const demo = createDemoFixture(fixtureDir).policy as K8sObject;
const demoWithImages = structuredClone(demo);
demoWithImages.spec.images = [{ repository: 'ghcr.io/org/app', keyless: [{ identity: 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' }], requireProvenance: true }];

/** [where, document, full key material present (compilePolicy can parse the keys)] */
const SOURCES: Array<[string, K8sObject, boolean]> = [
  ...readdirSync(join(DEPLOY, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadYamlFile(join(DEPLOY, 'examples', f)).filter(isPolicy).map((d): [string, K8sObject, boolean] => [`deploy/examples/${f}`, d, true])),
  // README snippets abbreviate keys with "…": the CRD and the schema must agree; key parsing is not attempted.
  ...markdownPolicies(join(DEPLOY, '..', 'README.md')).map((d): [string, K8sObject, boolean] => ['README.md', d, false]),
  ...markdownPolicies(join(DEPLOY, 'README.md')).map((d): [string, K8sObject, boolean] => ['deploy/README.md', d, false]),
  ['npm start / e2e demo fixture', demo, true],
  ['e2e image fixture (demo + images)', demoWithImages, true],
];

describe('every shipped and documented policy means the same to the API server and to the gate', () => {
  it('finds the policies it checks (examples, README)', () => {
    expect(SOURCES.filter(([w]) => w.startsWith('deploy/examples')).length).toBeGreaterThan(0);
    expect(SOURCES.filter(([w]) => w === 'README.md').length).toBeGreaterThan(0);
  });

  it.each(SOURCES.map(([where, doc, full]) => [`${where}: ${doc.kind} ${doc.metadata?.name}`, doc, full] as const))('%s', async (_name, doc, full) => {
    const { stored, unknownFields, errors } = admitCustomResource(CRDS[doc.kind]!, doc);
    expect(unknownFields, 'kubectl apply (fieldValidation=Strict) would refuse these fields').toEqual([]);
    expect(errors, 'the API server would refuse the object').toEqual([]);
    // The parser reads the stored (pruned, defaulted) object exactly as the API server stored it ...
    const parsed = gatePolicySpec.safeParse(stored.spec);
    expect(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([]);
    expect(parsed.data).toStrictEqual(stored.spec);
    // ... and reads the original the same way: nothing the API server adds or drops changes the policy.
    expect(gatePolicySpec.parse(doc.spec)).toStrictEqual(stored.spec);
    if (full && doc.kind === 'GatePolicy') await expect(compilePolicy(stored)).resolves.toMatchObject({ spec: stored.spec });
  });
});

describe('what the API server stores is what the parser reads (attacker: a policy author relying on defaults)', () => {
  const base = (spec: Record<string, unknown>): K8sObject => ({
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name: 'p', namespace: 'argocd' },
    spec: { repository: 'https://github.com/org/app', branches: ['main'], commits: { gitsign: [{ identity: 'a@example.com', issuer: 'https://accounts.google.com' }] }, ...spec },
  });
  const keyless = [{ identity: 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' }];

  it('an image rule without requireProvenance requires provenance in both (the safe default)', () => {
    const doc = base({ images: [{ repository: 'ghcr.io/org/app', keyless }] });
    const { stored, errors } = admitCustomResource(CRDS['GatePolicy']!, doc);
    expect(errors).toEqual([]);
    expect(stored.spec.images[0].requireProvenance).toBe(true);
    expect(gatePolicySpec.parse(doc.spec).images?.[0]?.requireProvenance).toBe(true);
  });

  it('a GPG signer keeps its publicKey through the API server, and v5 (64-hex) fingerprints pass both', async () => {
    const example = loadYamlFile(join(DEPLOY, 'examples/gatepolicy.yaml')).find(isPolicy)!;
    const gpg = example.spec.commits.gpg[0];
    const doc = base({ commits: { gpg: [gpg] } });
    const { stored, unknownFields, errors } = admitCustomResource(CRDS['GatePolicy']!, doc);
    expect([unknownFields, errors]).toEqual([[], []]);
    expect(stored.spec.commits.gpg[0].publicKey).toBe(gpg.publicKey);
    await expect(compilePolicy(stored)).resolves.toMatchObject({ commit: { gpg: { keys: [{ fingerprint: gpg.fingerprint.toLowerCase() }] } } });
    const v5 = base({ commits: { gpg: [{ fingerprint: 'ab'.repeat(32), publicKey: '-----BEGIN PGP PUBLIC KEY BLOCK-----' }] } });
    expect(admitCustomResource(CRDS['GatePolicy']!, v5).errors).toEqual([]);
    expect(gatePolicySpec.safeParse(v5.spec).success).toBe(true);
  });

  it('what the CRD refuses for bounds the parser refuses too (no policy valid in one and not the other)', () => {
    for (const spec of [
      { commits: { requiredSigners: 2, gitsign: keyless } },
      { commits: { gpg: [{ fingerprint: 'A'.repeat(41), publicKey: '-----BEGIN PGP PUBLIC KEY BLOCK-----' }] } },
      { images: [{ repository: 'ghcr.io/org/app', keys: [{ publicKeyPem: '-----BEGIN PUBLIC KEY-----' }] }] },
      { branches: Array.from({ length: 65 }, (_, i) => `b${i}`) },
      { commits: {} },
    ]) {
      const doc = base(spec);
      expect(admitCustomResource(CRDS['GatePolicy']!, doc).errors, JSON.stringify(spec)).not.toEqual([]);
      expect(gatePolicySpec.safeParse(doc.spec).success, JSON.stringify(spec)).toBe(false);
    }
  });
});
