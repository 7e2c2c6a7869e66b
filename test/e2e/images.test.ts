/**
 * Images end to end: a real registry on loopback, images and SLSA provenance signed by a private test Sigstore, GitHub
 * `push` and `registry_package` webhooks through the receiver, verifier and gate processes. An Application that
 * requires the image is pinned to commit X only when X is verified and a trusted build of X is published — in
 * either order — and never on an image built from another commit or by an untrusted workflow. A lax Audit dev policy
 * for the same Application and a lax policy for another repository never supply the rule for the Enforce decision.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAppReader,
  createDemoFixture,
  DEMO_APP,
  gateUrlOf,
  sendPush,
  startStack,
  waitForDecision,
  type DemoFixture,
  type Stack,
} from '@gitops-gate/local-stack';
import { GITHUB_ISSUER, slsaV1Statement, startPrivateSigstore, type PrivateSigstore } from '@gitops-gate/oci/testing';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createRedisConnection } from '@gitops-gate/queue';
import {
  deliveryHeaders,
  pushReferrerBundle,
  pushTestImage,
  startTestRegistry,
  startTestRedis,
  type TestRedis,
  type TestRegistry,
} from '@gitops-gate/testing';

const TRUSTED = 'https://github.com/demo/app/.github/workflows/release.yml@refs/heads/main';
const UNTRUSTED = 'https://github.com/demo/app/.github/workflows/dev.yml@refs/heads/main';
const IMAGE = 'ghcr.io/demo/app';

let redis: TestRedis;
let reg: TestRegistry;
let sigstore: PrivateSigstore;
let stack: Stack;
let fx: DemoFixture;
let readApp: ReturnType<typeof createAppReader>;
let head: string | undefined;
let api: CustomObjectsApi;
const queuePrefix = `img-${randomUUID().slice(0, 8)}`;
const G = { group: 'gitops-gate.io', version: 'v1alpha1', plural: 'gatepolicies', namespace: DEMO_APP.namespace };

/** Builds and publishes an image "from" a commit, with provenance signed by `builder`; sends GitHub's webhook. */
async function publish(commit: string, builder = TRUSTED, repository = 'demo/app'): Promise<string> {
  const img = await pushTestImage(reg.url, 'demo/app');
  const bundle = await sigstore.signStatement(
    slsaV1Statement({ digest: img.digest, name: IMAGE, commit, repository: `https://github.com/${repository}` }),
    { san: builder, issuer: GITHUB_ISSUER, sha: commit },
  );
  await pushReferrerBundle(reg.url, 'demo/app', img.digest, bundle, {
    annotations: { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' },
  });
  await sendPackageEvent(img.digest, repository);
  return img.digest;
}

async function sendPackageEvent(digest: string, repository = 'demo/app'): Promise<void> {
  const body = JSON.stringify({
    action: 'published',
    registry_package: {
      name: 'app',
      namespace: 'demo',
      package_type: 'CONTAINER',
      owner: { login: 'demo' },
      package_version: { version: digest, container_metadata: { tag: { name: 'latest', digest } } },
    },
    repository: { full_name: repository, clone_url: `https://github.com/${repository}.git` },
  });
  const res = await fetch(`${stack.receiverUrl}/webhooks/github`, {
    method: 'POST',
    headers: deliveryHeaders(stack.secrets[0]!, 'registry_package', body),
    body,
  });
  expect(res.status).toBe(202);
}

async function pushCommit(): Promise<string> {
  const sha = fx.repo.commit(`change ${randomUUID().slice(0, 6)}`, { signWith: fx.key });
  fx.repo.push();
  expect((await sendPush(stack, sha, head)).status).toBe(202);
  head = sha;
  return sha;
}

interface Decision {
  newRevision?: string;
  action: string;
  reason: string;
  deliveryId: string;
  repo: string;
  policy?: string;
}

async function imageDecisions(digest: string): Promise<Decision[]> {
  const { decisions } = (await (await fetch(`${gateUrlOf(stack)}/api/decisions?app=image:${IMAGE}&limit=100`)).json()) as {
    decisions: Decision[];
  };
  return decisions.filter((x) => x.newRevision === digest);
}

async function imageDecision(digest: string, count = 1): Promise<Decision> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ds = await imageDecisions(digest);
    if (ds.length >= count) return ds[0]!;
    await sleep(50);
  }
  throw new Error(`no image decision for ${digest}`);
}

const revision = async () => (await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision;

beforeAll(async () => {
  const workDir = mkdtempSync(join(tmpdir(), 'gg-img-'));
  fx = createDemoFixture(workDir);
  [redis, reg, sigstore] = await Promise.all([startTestRedis(), startTestRegistry(), startPrivateSigstore()]);
  writeFileSync(join(workDir, 'trusted_root.json'), JSON.stringify(sigstore.trustedRoot));
  const app = fx.application as { metadata: { annotations: Record<string, string> } };
  app.metadata.annotations['gitops-gate.io/require-images'] = IMAGE;
  const policy = fx.policy as { spec: Record<string, unknown> };
  policy.spec.images = [{ repository: IMAGE, keyless: [{ identity: TRUSTED, issuer: GITHUB_ISSUER }], requireProvenance: true }];
  // Named to be listed first: the verifier used to take the rule of whichever policy named the image first.
  const lax = (name: string, spec: Record<string, unknown>) => ({
    ...policy,
    metadata: { ...(policy as { metadata: object }).metadata, name },
    spec: {
      ...policy.spec,
      images: [{ repository: IMAGE, keyless: [{ identityRegExp: '^.*$', issuer: GITHUB_ISSUER }], requireProvenance: false }],
      ...spec,
    },
  });
  const devLax = lax('a-dev-lax', { mode: 'Audit' });
  // Another team's lax policy, governing every repository's images but selecting only its own Applications.
  const playground = lax('a-playground', { repository: 'https://github.com/demo/playground', selector: { namespaces: ['team-b'] } });
  // A lax policy for this repository's images that selects no Application here (only team-b's).
  const teamB = lax('a-team-b', { selector: { namespaces: ['team-b'] } });
  stack = await startStack({
    workDir,
    redisUrl: redis.url,
    seed: [app, devLax, playground, teamB, policy],
    urlRewrites: fx.urlRewrites,
    queuePrefix,
    env: {
      TRUSTED_ROOT_FILE: join(workDir, 'trusted_root.json'),
      REGISTRY_MIRRORS: JSON.stringify({ 'ghcr.io': reg.url }),
      REGISTRY_INSECURE_HOSTS: reg.url,
    },
  });
  readApp = createAppReader(stack.kubeconfig);
  const kc = new KubeConfig();
  kc.loadFromFile(stack.kubeconfig);
  api = kc.makeApiClient(CustomObjectsApi);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await Promise.all([redis?.close(), reg?.stop(), sigstore?.close()]);
});

describe('commit + image', () => {
  it('push first, image later: waits for the image, then pins', async () => {
    const sha = await pushCommit();
    const d = await waitForDecision(gateUrlOf(stack), sha);
    expect(d.action).toBe('wait-images');
    expect(await revision()).toBe('main');
    const digest = await publish(sha);
    expect((await imageDecision(digest)).action).toBe('image-verified');
    const deadline = Date.now() + 20_000;
    while ((await revision()) !== sha && Date.now() < deadline) await sleep(50);
    expect(await revision()).toBe(sha);
    expect((await readApp(DEMO_APP.namespace, DEMO_APP.name)).annotations['gitops-gate.io/images']).toBe(`${IMAGE}@${digest}`);
  });

  it('image first, push later: the commit verdict completes the set', async () => {
    const sha = fx.repo.commit('next', { signWith: fx.key });
    fx.repo.push();
    const digest = await publish(sha);
    expect((await imageDecision(digest)).action).toBe('image-verified');
    expect((await sendPush(stack, sha, head)).status).toBe(202);
    head = sha;
    const d = await waitForDecision(gateUrlOf(stack), sha);
    expect(d.action).toBe('pin');
    expect(await revision()).toBe(sha);
  });

  it('a repeated image event is a verdict-cache lookup (shared by verifiers in Redis)', async () => {
    const sha = fx.repo.commit('cached', { signWith: fx.key });
    fx.repo.push();
    const digest = await publish(sha);
    await imageDecision(digest);
    const verifier = stack.processes.find((p) => p.service === 'verifier')!;
    const hits = async () =>
      Number(
        /gitops_gate_verdict_cache_lookups_total\{[^}]*kind="image"[^}]*result="hit"[^}]*\} (\d+)/.exec(
          await (await fetch(`http://127.0.0.1:${verifier.port}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    const before = await hits();
    await sendPackageEvent(digest);
    const deadline = Date.now() + 20_000;
    while ((await hits()) <= before && Date.now() < deadline) await sleep(50);
    expect(await hits()).toBeGreaterThan(before);
  });

  it('an image built from another commit does not let a commit through', async () => {
    const before = await revision();
    const sha = await pushCommit();
    await publish(before!);
    const d = await waitForDecision(gateUrlOf(stack), sha);
    expect(d.action).toBe('wait-images');
    await sleep(1_000);
    expect(await revision()).toBe(before);
  });

  it('an image built by an untrusted workflow is rejected and does not pin, though the Audit dev policy trusts it', async () => {
    const before = await revision();
    const sha = await pushCommit();
    const digest = await publish(sha, UNTRUSTED);
    const d = await imageDecision(digest);
    expect(d.action).toBe('image-rejected');
    // The dev policy selects the same Application and passed the build: it never supplies the Enforce rule.
    expect(d.policy).toMatch(/argocd\/a-dev-lax@\d+:ok/);
    expect(d.policy).toMatch(/argocd\/demo-signers@\d+:(?!ok)/);
    await sleep(1_000);
    expect(await revision()).toBe(before);
  });

  it('a build verified for another repository (demo/playground, under its lax policy) does not count for demo/app', async () => {
    const before = await revision();
    const sha = await pushCommit();
    const digest = await publish(sha, 'https://github.com/demo/playground/.github/workflows/dev.yml@refs/heads/main', 'demo/playground');
    const d = await imageDecision(digest);
    expect(d, JSON.stringify(d)).toMatchObject({ action: 'image-verified', repo: 'https://github.com/demo/playground' });
    await sleep(1_000);
    expect(await revision()).toBe(before);
  });

  it('a policy edit after the image was verified: the image is verified again under the new generation before the pin', async () => {
    const sha = fx.repo.commit('regen', { signWith: fx.key });
    fx.repo.push();
    const digest = await publish(sha);
    expect((await imageDecision(digest)).action).toBe('image-verified');
    const signers = { ...G, name: 'demo-signers' };
    await api.patchNamespacedCustomObject(
      { ...signers, body: { spec: { branches: ['main', 'release/*'] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      const obj = (await api.getNamespacedCustomObject(signers)) as {
        metadata: { generation: number };
        status?: { observedGeneration?: number };
      };
      if (obj.status?.observedGeneration === obj.metadata.generation) break;
      if (Date.now() > deadline) throw new Error('policy edit not observed');
      await sleep(25);
    }
    expect((await sendPush(stack, sha, head)).status).toBe(202);
    head = sha;
    const until = Date.now() + 30_000;
    while ((await revision()) !== sha && Date.now() < until) await sleep(50);
    expect(await revision()).toBe(sha);
    // Pinned only after a second verification of the same digest, requested by the gate, under generation 2.
    const ds = await imageDecisions(digest);
    expect(ds.map((x) => x.deliveryId)).toEqual([expect.stringMatching(/^reverify-/), expect.any(String)]);
    expect(ds[0]?.policy).toMatch(/argocd\/demo-signers@2:ok/);
  });

  // Last: it deletes the policies.
  it('a commit waiting for images is not pinned when the image arrives after its policies were deleted', async () => {
    const before = await revision();
    const sha = await pushCommit();
    expect((await waitForDecision(gateUrlOf(stack), sha)).action).toBe('wait-images');
    await api.deleteNamespacedCustomObject({ ...G, name: 'demo-signers' });
    await api.deleteNamespacedCustomObject({ ...G, name: 'a-dev-lax' });
    // Wait until the verifiers see the change (the gate publishes the live set to Redis).
    const conn = createRedisConnection(redis.url, 'worker');
    try {
      const deadline = Date.now() + 15_000;
      while (/demo-signers/.test((await conn.get(policySnapshotKey(queuePrefix))) ?? 'demo-signers')) {
        if (Date.now() > deadline) throw new Error('policy deletion not published');
        await sleep(25);
      }
    } finally {
      conn.disconnect();
    }
    // Verified under the other team's policy, which governs the image but selects no Application of this namespace.
    const digest = await publish(sha);
    expect((await imageDecision(digest)).action).toBe('image-verified');
    await sleep(1_000);
    expect(await revision()).toBe(before);
    const { decisions } = (await (
      await fetch(`${gateUrlOf(stack)}/api/decisions?sha=${sha}&app=${DEMO_APP.namespace}/${DEMO_APP.name}`)
    ).json()) as { decisions: Decision[] };
    expect(decisions.map((d) => d.action)).not.toContain('pin');
    // The policy change decided the waiting commit again.
    expect(decisions.length).toBeGreaterThan(1);
  });
});
