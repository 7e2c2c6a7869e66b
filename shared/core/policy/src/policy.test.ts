/**
 * Policy identity: which object a compiled policy (and every result computed with it) stands for — the gate counts a
 * result only while that object's generation is live, and a namespaced GatePolicy selects only its own namespace.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy, parsePolicyFile } from './policy.js';
import { POLICY_ERROR_CODES, PolicyError } from './errors.js';
import { evaluatePolicies } from './commit-evaluation.js';

const doc = (extra: Record<string, unknown> = {}) => ({
  apiVersion: 'gitops-gate.io/v1alpha1',
  kind: 'GatePolicy',
  metadata: { name: 'p' },
  spec: {
    repository: 'https://github.com/org/app',
    branches: ['main'],
    commits: { gitsign: [{ identity: 'a@example.com', issuer: 'https://accounts.google.com' }] },
  },
  ...extra,
});
const meta = { name: 'p', namespace: 'team-a', uid: 'u-1', generation: 3 };
// A commit object is not needed to see which identity a result carries: the signature check is passed in.
const commit = new TextEncoder().encode(
  'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@example.com> 0 +0000\ncommitter a <a@example.com> 0 +0000\n\nx\n',
);
const pass = async () => ({
  ok: true as const,
  method: 'ssh' as const,
  policy: 'p',
  sha: 'x',
  signer: { identity: 'a@example.com' },
  evidence: [],
});

describe('policy identity: kind, scope, namespace, uid', () => {
  it('a watched GatePolicy is Namespaced and keeps namespace, uid and generation; its results carry them', async () => {
    const p = await compilePolicy(doc({ metadata: meta }), 'GatePolicy team-a/p', 'object');
    expect(p).toMatchObject({ name: 'team-a/p', scope: 'Namespaced', namespace: 'team-a', uid: 'u-1', generation: 3 });
    const out = await evaluatePolicies(commit, [p], {}, pass);
    expect(out.results[0]).toMatchObject({ policy: 'team-a/p', scope: 'Namespaced', namespace: 'team-a', uid: 'u-1', generation: 3 });
  });
  it('a ClusterGatePolicy is Cluster-scoped and cannot pose as a tenant object through metadata.namespace', async () => {
    const p = await compilePolicy(doc({ kind: 'ClusterGatePolicy', metadata: meta }), 'ClusterGatePolicy p', 'object');
    expect(p).toMatchObject({ name: 'p', scope: 'Cluster', namespace: undefined, uid: 'u-1' });
  });
  it('a watched GatePolicy without a namespace is invalid, naming the field; other kinds are refused', async () => {
    await expect(compilePolicy(doc(), 'GatePolicy p', 'object')).rejects.toThrow(/GatePolicy p\.metadata\.namespace/);
    await expect(compilePolicy(doc({ kind: 'Policy' }), 'x', 'object')).rejects.toThrow(/x\.kind/);
  });
  it('file policies (CLI, POLICY_FILE) are scope File, of either kind', async () => {
    expect((await compilePolicy(doc({ metadata: meta }))).scope).toBe('File');
    expect((await parsePolicyFile(JSON.stringify(doc({ kind: 'ClusterGatePolicy' }))))[0]?.scope).toBe('File');
  });
});

describe('policy errors', () => {
  it('an invalid policy throws PolicyError with a listed code, naming the field', async () => {
    const err: unknown = await compilePolicy(doc({ spec: { repository: 'https://github.com/org/app', branches: [], commits: {} } })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PolicyError);
    expect(POLICY_ERROR_CODES).toContain((err as PolicyError).code);
    expect((err as PolicyError).message).toMatch(/policy\.spec\.branches/);
  });
});
