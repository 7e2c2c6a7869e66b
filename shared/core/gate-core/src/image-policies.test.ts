import { describe, expect, it } from 'vitest';
import type { CommitVerdictJob, PolicyResult } from '@gitops-gate/contracts';
import type { Application } from './applications.js';
import { checkImageRequirement, imagePoliciesFor, type StoredImageResult } from './image-policies.js';
import type { LivePolicy } from '@gitops-gate/policy';

const SHA = 'c'.repeat(40);
const REPO = 'https://github.com/org/app';
const app: Application = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Application',
  metadata: { name: 'app', namespace: 'argocd', labels: { env: 'prod' } },
  spec: {},
};
type P = Omit<PolicyResult, 'ok' | 'code'>;
const STRICT: P = {
  name: 'argocd/strict',
  scope: 'Namespaced',
  namespace: 'argocd',
  uid: 'u1',
  generation: 3,
  mode: 'Enforce',
  selector: {},
};
const TENANT: P = {
  name: 'team-b/mine',
  scope: 'Namespaced',
  namespace: 'team-b',
  uid: 'u2',
  generation: 1,
  mode: 'Enforce',
  selector: {},
};
const CLUSTER: P = {
  name: 'platform',
  scope: 'Cluster',
  uid: 'u3',
  generation: 1,
  mode: 'Enforce',
  selector: { matchLabels: { env: 'prod' } },
};
const FILE: P = { name: 'from-file', scope: 'File', mode: 'Enforce', selector: {} };
const AUDIT: P = { name: 'argocd/dev', scope: 'Namespaced', namespace: 'argocd', uid: 'u4', generation: 1, mode: 'Audit', selector: {} };

const verdict = (...ps: P[]): CommitVerdictJob =>
  ({ repoUrl: REPO, branch: 'main', sha: SHA, policies: ps.map((p) => ({ ...p, ok: true, code: 'VERIFIED' })) }) as CommitVerdictJob;
const live = (...ps: P[]): LivePolicy[] => ps.map((p) => ({ ...p, governs: () => true }));
const stored = (p: P, extra: Partial<StoredImageResult> = {}): StoredImageResult => ({
  scope: p.scope,
  namespace: p.namespace,
  name: p.name,
  uid: p.uid,
  generation: p.generation,
  mode: p.mode,
  ok: true,
  code: 'VERIFIED',
  repoUrl: REPO,
  image: 'ghcr.io/org/app',
  digest: `sha256:${'1'.repeat(64)}`,
  sourceCommit: SHA,
  verifiedAt: '2026-01-01T00:00:00Z',
  ...extra,
});

describe("which policies decide an Application's images", () => {
  it("the live Enforce policies selecting it (a namespaced policy only in its own namespace), plus the verifier's file policies", () => {
    const got = imagePoliciesFor(app, verdict(STRICT, TENANT, CLUSTER, FILE, AUDIT), live(STRICT, TENANT, CLUSTER, AUDIT), 'Enforce');
    expect(got.map((p) => p.name)).toEqual(['argocd/strict', 'platform', 'from-file']);
  });

  it('a policy in the verdict but no longer live does not count; without a policy watch the verdict is all there is', () => {
    expect(imagePoliciesFor(app, verdict(STRICT), live(), 'Enforce')).toEqual([]);
    expect(imagePoliciesFor(app, verdict(STRICT), undefined, 'Enforce').map((p) => p.name)).toEqual(['argocd/strict']);
  });
});

describe('checkImageRequirement', () => {
  const check = (results: StoredImageResult[], policies = [STRICT]) =>
    checkImageRequirement({
      images: ['ghcr.io/org/app'],
      sha: SHA,
      repoUrl: `${REPO}.git`,
      policies,
      builds: new Map([[`ghcr.io/org/app@sha256:${'1'.repeat(64)}`, results]]),
    });

  it('passes with a result for this repository, this policy object at its generation, naming this commit', () => {
    expect(check([stored(STRICT)])).toMatchObject({ complete: true, satisfiedBy: [`ghcr.io/org/app@sha256:${'1'.repeat(64)}`] });
  });

  it('no live policy → fails closed', () => {
    expect(check([stored(STRICT)], []).missing[0]).toMatch(/no live policy/);
  });

  it('the same name with another uid (deleted and re-created) is not the same policy', () => {
    const c = check([stored({ ...STRICT, uid: 'old' })]);
    expect(c.complete).toBe(false);
    expect(c.reverify).toHaveLength(1);
  });

  it('a pass naming another commit does not count', () => {
    expect(check([stored(STRICT, { sourceCommit: 'd'.repeat(40) })]).missing[0]).toMatch(/built from dddddddddddd/);
  });
});
