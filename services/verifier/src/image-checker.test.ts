import { createBundleTrust } from '@gitops-gate/bundle-verify';
/**
 * The image checker against a real registry (Debian's docker-registry on loopback) and a private test Sigstore: one
 * result per governing policy, so the gate can judge an image by the policies of each Application.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, type CompiledPolicy } from '@gitops-gate/policy';
import type { VerifyImageJob } from '@gitops-gate/contracts';
import { GITHUB_ISSUER, slsaV1Statement, startPrivateSigstore, type PrivateSigstore } from '@gitops-gate/oci/testing';
import { createRedisConnection } from '@gitops-gate/queue';
import {
  pushReferrerBundle,
  pushTestImage,
  startTestRedis,
  startTestRegistry,
  type TestRedis,
  type TestRegistry,
} from '@gitops-gate/testing';
import { createImageChecker } from './image-checker.js';

const REPO = 'https://github.com/org/app';
const IMAGE = 'ghcr.io/org/app';
const TRUSTED = 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main';
const UNTRUSTED = 'https://github.com/org/app/.github/workflows/dev.yml@refs/heads/main';
const COMMIT = 'a'.repeat(40);

let reg: TestRegistry;
let sigstore: PrivateSigstore;
let redis: TestRedis;
let conn: Redis;

function policy(name: string, mode: 'Enforce' | 'Audit', images: object[], generation = 1, repository = REPO): Promise<CompiledPolicy> {
  return compilePolicy(
    {
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name, namespace: 'argocd', generation },
      spec: {
        mode,
        repository,
        branches: ['main'],
        commits: { gitsign: [{ identity: 'dev@example.com', issuer: 'https://accounts.google.com' }] },
        images,
      },
    },
    'policy',
    'object',
  );
}
// Dev policy: any workflow of any repository may build, no provenance needed.
const lax = () =>
  policy('dev-lax', 'Audit', [{ repository: IMAGE, keyless: [{ identityRegExp: '.*', issuer: GITHUB_ISSUER }], requireProvenance: false }]);
const strict = (generation = 1) =>
  policy(
    'prod-strict',
    'Enforce',
    [{ repository: IMAGE, keyless: [{ identity: TRUSTED, issuer: GITHUB_ISSUER }], requireProvenance: true }],
    generation,
  );

async function publish(builder: string): Promise<string> {
  const img = await pushTestImage(reg.url, 'org/app');
  const bundle = await sigstore.signStatement(slsaV1Statement({ digest: img.digest, name: IMAGE, commit: COMMIT, repository: REPO }), {
    san: builder,
    issuer: GITHUB_ISSUER,
    sha: COMMIT,
  });
  await pushReferrerBundle(reg.url, 'org/app', img.digest, bundle, {
    annotations: { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' },
  });
  return img.digest;
}

function job(digest: string): VerifyImageJob {
  return {
    v: 1,
    kind: 'image',
    deliveryId: randomUUID(),
    repoUrl: REPO,
    repoFullName: 'org/app',
    image: IMAGE,
    digest,
    tags: [],
    receivedAt: new Date().toISOString(),
  };
}

function checker(policies: CompiledPolicy[], cache?: { prefix: string; lookups: boolean[] }) {
  return createImageChecker({
    policies: { current: async () => policies },
    trust: createBundleTrust(sigstore.trustedRoot),
    credentials: {},
    insecureHosts: [reg.url],
    mirrors: { 'ghcr.io': reg.url },
    cache: cache ? { redis: conn, prefix: cache.prefix, onLookup: (hit) => void cache.lookups.push(hit) } : undefined,
  });
}

beforeAll(async () => {
  [reg, sigstore, redis] = await Promise.all([startTestRegistry(), startPrivateSigstore(), startTestRedis()]);
  conn = createRedisConnection(redis.url, 'worker');
}, 60_000);
afterAll(async () => {
  conn?.disconnect();
  await Promise.all([reg?.stop(), sigstore?.close(), redis?.close()]);
});

describe('image checker: one result per governing policy', () => {
  it('a build only the Audit dev policy trusts is rejected under the Enforce policy, whichever policy is listed first', async () => {
    const digest = await publish(UNTRUSTED);
    for (const order of [
      [await lax(), await strict()],
      [await strict(), await lax()],
    ]) {
      const v = await checker(order)(job(digest));
      expect(v.ok).toBe(false);
      expect(v.policies?.find((p) => p.name === 'argocd/prod-strict')).toMatchObject({
        mode: 'Enforce',
        ok: false,
        generation: 1,
        namespace: 'argocd',
        scope: 'Namespaced',
      });
      expect(
        v.policies?.find((p) => p.name === 'argocd/dev-lax'),
        JSON.stringify(v.policies),
      ).toMatchObject({ mode: 'Audit', ok: true });
      expect(v.reason).toMatch(/^policy argocd\/prod-strict: /);
    }
  });

  it('a trusted build passes every policy and names its source commit', async () => {
    const digest = await publish(TRUSTED);
    const v = await checker([await lax(), await strict()])(job(digest));
    expect(v).toMatchObject({ ok: true, code: 'VERIFIED', sourceCommit: COMMIT });
    expect(v.policies?.map((p) => [p.name, p.ok])).toEqual([
      ['argocd/dev-lax', true],
      ['argocd/prod-strict', true],
    ]);
  });

  it('a governing policy without a rule for the image says so (NO_IMAGE_RULE); with no rule anywhere: NO_IMAGE_POLICY', async () => {
    const digest = await publish(TRUSTED);
    const commitsOnly = await policy('commits-only', 'Enforce', []);
    const v = await checker([commitsOnly, await strict()])(job(digest));
    expect(v.policies?.find((p) => p.name === 'argocd/commits-only')).toMatchObject({ ok: false, code: 'NO_IMAGE_RULE' });
    // The overall ok (for the record) covers the rules that exist; the gate judges per policy and fails that one.
    expect(v.ok).toBe(true);
    const none = await checker([commitsOnly])(job(digest));
    expect(none).toMatchObject({ ok: false, code: 'NO_IMAGE_POLICY' });
    // A policy for another repository does not govern this image at all.
    const elsewhere = await policy(
      'other',
      'Enforce',
      [{ repository: IMAGE, keyless: [{ identityRegExp: '.*', issuer: GITHUB_ISSUER }], requireProvenance: false }],
      1,
      'https://github.com/org/playground',
    );
    expect((await checker([elsewhere])(job(digest))).policies).toEqual([]);
  });

  it('the verdict cache is keyed by the policy generation: a new generation verifies again', async () => {
    const digest = await publish(TRUSTED);
    const cache = { prefix: `c-${randomUUID().slice(0, 8)}`, lookups: [] as boolean[] };
    await checker([await strict(1)], cache)(job(digest));
    const again = await checker([await strict(1)], cache)(job(digest));
    const bumped = await checker([await strict(2)], cache)(job(digest));
    expect(cache.lookups).toEqual([false, true, false]);
    expect(again.policies?.[0]).toMatchObject({ ok: true, generation: 1 });
    expect(bumped.policies?.[0]).toMatchObject({ ok: true, generation: 2 });
  });
});
