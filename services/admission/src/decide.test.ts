import { describe, expect, it } from 'vitest';
import type { StoredImageResult } from '@gitops-gate/gate-core';
import { decideAdmission, parseImageRef, policiesForNamespace, type AdmissionPolicy } from './decide.js';
import { addsNoImage, readReview } from './review.js';
import { D_FAIL, D_OK, D_UNKNOWN, D_UNPINNED, deployment, IMAGE, PINNED, pod, REPO, review, UNPINNED } from './testing/fixtures.js';

const policy = (over: Partial<AdmissionPolicy> = {}, id: Partial<AdmissionPolicy['identity']> = {}): AdmissionPolicy => ({
  identity: { scope: 'Namespaced', namespace: 'shop', name: 'shop/shop', uid: 'u1', generation: 2, ...id },
  mode: 'Enforce',
  selector: {},
  repository: REPO,
  images: [IMAGE],
  requirePinnedCommit: false,
  ...over,
});
const result = (digest: string, over: Partial<StoredImageResult> = {}): StoredImageResult => ({
  scope: 'Namespaced',
  namespace: 'shop',
  name: 'shop/shop',
  uid: 'u1',
  generation: 2,
  mode: 'Enforce',
  ok: true,
  code: 'IMAGE_VERIFIED',
  repoUrl: REPO,
  image: IMAGE,
  digest,
  sourceCommit: PINNED,
  verifiedAt: '2026-01-01T00:00:00Z',
  ...over,
});
const store = (...rs: StoredImageResult[]) => new Map(rs.map((r) => [`${r.image}@${r.digest}`, [r]]));
const decide = (images: string[], policies = [policy()], results = store(result(D_OK)), pinned = new Set([PINNED])) =>
  decideAdmission({ images: images.map((image, i) => ({ container: `c${i}`, image })), policies, results, pinned });

describe('admission decision', () => {
  it('allows a digest with a passing verdict under the live generation', () => {
    expect(decide([`${IMAGE}@${D_OK}`])).toMatchObject({ allowed: true, mode: 'Enforce', problems: [] });
  });

  it('denies a tag-only reference, naming the container and rule', () => {
    const d = decide([`${IMAGE}:v1`]);
    expect(d.allowed).toBe(false);
    expect(d.problems[0]).toMatchObject({ container: 'c0', code: 'TAG_ONLY' });
    expect(d.message).toContain('[TAG_ONLY]');
  });

  it('attacker: a tag that names a verified digest in its text is still tag-only', () => {
    expect(decide([`${IMAGE}:${D_OK.slice(7)}`]).problems[0]?.code).toBe('TAG_ONLY');
  });

  it('denies an unknown digest and says how to get it verified', () => {
    const d = decide([`${IMAGE}@${D_UNKNOWN}`]);
    expect(d.problems[0]).toMatchObject({ code: 'NO_VERDICT', digest: D_UNKNOWN, policy: 'shop/shop' });
    expect(d.problems[0]?.message).toMatch(/registry_package|webhook package/);
  });

  it('denies a failing verdict with its code', () => {
    const d = decide([`${IMAGE}@${D_FAIL}`], [policy()], store(result(D_FAIL, { ok: false, code: 'IMAGE_SIGNATURE_INVALID' })));
    expect(d.problems[0]).toMatchObject({ code: 'VERDICT_FAILED' });
    expect(d.problems[0]?.message).toContain('IMAGE_SIGNATURE_INVALID');
  });

  it('a verdict under an older policy generation does not count', () => {
    expect(decide([`${IMAGE}@${D_OK}`], [policy({}, { generation: 3 })]).problems[0]?.code).toBe('NO_VERDICT');
  });

  it('attacker: a passing verdict of a re-created policy (other uid) or for another repository does not count', () => {
    expect(decide([`${IMAGE}@${D_OK}`], [policy({}, { uid: 'u2' })]).allowed).toBe(false);
    expect(decide([`${IMAGE}@${D_OK}`], [policy()], store(result(D_OK, { repoUrl: 'https://github.com/attacker/shop' }))).allowed).toBe(
      false,
    );
  });

  it('requires a pinned source commit when the policy asks', () => {
    const results = store(result(D_OK), result(D_UNPINNED, { sourceCommit: UNPINNED }));
    const p = [policy({ requirePinnedCommit: true })];
    expect(decide([`${IMAGE}@${D_OK}`], p, results).allowed).toBe(true);
    expect(decide([`${IMAGE}@${D_UNPINNED}`], p, results).problems[0]?.code).toBe('UNPINNED_COMMIT');
    expect(decide([`${IMAGE}@${D_UNPINNED}`], [policy()], results).allowed).toBe(true);
  });

  it('denies an image no policy of the namespace has a rule for (e.g. a sidecar from Docker Hub)', () => {
    const d = decide([`${IMAGE}@${D_OK}`, `busybox@${D_OK}`]);
    expect(d.problems).toEqual([expect.objectContaining({ container: 'c1', code: 'NOT_COVERED' })]);
  });

  it('Audit only: allowed with warnings naming what Enforce would deny', () => {
    const d = decide([`${IMAGE}:latest`], [policy({ mode: 'Audit' })]);
    expect(d).toMatchObject({ allowed: true, mode: 'Audit' });
    expect(d.warnings[0]).toMatch(/TAG_ONLY/);
  });

  it('Enforce decides when Enforce and Audit policies both guard the namespace', () => {
    const audit = policy({ mode: 'Audit' }, { name: 'shop/audit', uid: 'u9' });
    expect(decide([`${IMAGE}@${D_OK}`], [policy(), audit])).toMatchObject({ allowed: true });
    expect(decide([`${IMAGE}@${D_UNKNOWN}`], [policy(), audit]).allowed).toBe(false);
  });

  it('tenancy: a GatePolicy guards only its own namespace; a ClusterGatePolicy by selector.namespaces', () => {
    const cluster = policy({ selector: { namespaces: ['prod'] } }, { scope: 'Cluster', namespace: undefined, name: 'all' });
    const clusterAll = policy({}, { scope: 'Cluster', namespace: undefined, name: 'everywhere' });
    expect(policiesForNamespace([policy(), cluster], 'shop').map((p) => p.identity.name)).toEqual(['shop/shop']);
    expect(policiesForNamespace([policy(), cluster], 'prod').map((p) => p.identity.name)).toEqual(['all']);
    expect(policiesForNamespace([clusterAll], 'anything')).toHaveLength(1);
    expect(policiesForNamespace([policy({ selector: { namespaces: ['other'] } })], 'other')).toEqual([]);
  });

  it("a policy also guards the namespaces its selected Applications deploy into (the gate's selector rule)", () => {
    const app = (labels: Record<string, string>, dest: string) => ({
      metadata: { name: 'a', namespace: 'argocd', labels },
      spec: { destination: { namespace: dest } },
    });
    const argo = policy({ selector: { matchLabels: { env: 'prod' } } }, { namespace: 'argocd', name: 'argocd/prod' });
    expect(policiesForNamespace([argo], 'shop', [app({ env: 'prod' }, 'shop')])).toHaveLength(1);
    expect(policiesForNamespace([argo], 'shop', [app({ env: 'dev' }, 'shop')])).toEqual([]);
    // attacker: a tenant's GatePolicy in its own namespace does not select another namespace's Applications.
    const tenant = policy({}, { namespace: 'team-b', name: 'team-b/x' });
    expect(policiesForNamespace([tenant], 'shop', [app({}, 'shop')])).toEqual([]);
  });

  it('allows in a namespace no policy guards', () => {
    expect(decide([`nginx:latest`], [])).toMatchObject({ allowed: true, mode: 'none' });
  });
});

describe('image references', () => {
  it('completes Docker Hub names and splits tag and digest', () => {
    expect(parseImageRef('nginx')).toMatchObject({ repository: 'docker.io/library/nginx' });
    expect(parseImageRef(`GHCR.io/Org/Shop:v1@${D_OK}`)).toMatchObject({ repository: 'ghcr.io/org/shop', tag: 'v1', digest: D_OK });
    expect(parseImageRef('localhost:5000/app:1')).toMatchObject({ repository: 'localhost:5000/app', tag: '1' });
    expect(parseImageRef('ghcr.io/org/shop@sha256:short')).toBeUndefined();
  });
});

describe('reviews', () => {
  it('reads every container, init container and ephemeral container of a Pod', () => {
    const p = pod('shop', [`${IMAGE}@${D_OK}`], { init: ['busybox:1'] });
    (p.spec as Record<string, unknown>).ephemeralContainers = [{ name: 'debug', image: 'alpine' }];
    expect(readReview(review(p)).images.map((i) => i.container)).toEqual(['initContainers/init-0', 'c0', 'ephemeralContainers/debug']);
  });

  it('reads the pod template of a Deployment and a CronJob', () => {
    expect(readReview(review(deployment('shop', 'x:1'))).images).toEqual([{ container: 'web', image: 'x:1' }]);
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'c', namespace: 'shop' },
      spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { containers: [{ name: 'j', image: 'y:2' }] } } } } },
    };
    expect(readReview(review(cron)).images).toEqual([{ container: 'j', image: 'y:2' }]);
  });

  it('rejects malformed reviews with REVIEW_MALFORMED', () => {
    for (const bad of [
      {},
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      review({ kind: 'Pod', metadata: { name: 'x', namespace: 'a' }, spec: { containers: [{ name: 'n' }] } }),
    ]) {
      expect(() => readReview(bad)).toThrow(expect.objectContaining({ code: 'REVIEW_MALFORMED' }));
    }
  });

  it('an UPDATE that adds no image is not re-checked; one that adds or swaps an image is', () => {
    const upd = (oldImage: string, newImage: string) => {
      const r = review(deployment('shop', newImage)) as { request: Record<string, unknown> };
      r.request.operation = 'UPDATE';
      r.request.oldObject = deployment('shop', oldImage);
      return readReview(r);
    };
    expect(addsNoImage(upd('x:1', 'x:1'))).toBe(true);
    expect(addsNoImage(upd('x:1', 'x:2'))).toBe(false);
    // attacker: a CREATE claiming an oldObject is still checked in full.
    const create = review(deployment('shop', 'x:1')) as { request: Record<string, unknown> };
    create.request.oldObject = deployment('shop', 'x:1');
    expect(addsNoImage(readReview(create))).toBe(false);
  });
});
