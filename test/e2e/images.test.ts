/**
 * Images end to end: a real registry on loopback, images and SLSA provenance signed by a private test Sigstore, GitHub
 * `push` and `registry_package` webhooks through the receiver, verifier and gate processes. An Application that
 * requires the image is pinned to commit X only when X is verified and a trusted build of X is published — in
 * either order — and never on an image built from another commit or by an untrusted workflow.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppReader, createDemoFixture, DEMO_APP, gateUrlOf, sendPush, startStack, waitForDecision, type DemoFixture, type Stack } from '@gitops-gate/local-stack';
import { GITHUB_ISSUER, slsaV1Statement, startPrivateSigstore, type PrivateSigstore } from '@gitops-gate/oci/testing';
import { deliveryHeaders, pushReferrerBundle, pushTestImage, startTestRegistry, startTestRedis, type TestRedis, type TestRegistry } from '@gitops-gate/testing';

const TRUSTED = 'https://github.com/demo/app/.github/workflows/release.yml@refs/heads/main';
const UNTRUSTED = 'https://github.com/demo/app/.github/workflows/release.yml@refs/heads/evil';
const IMAGE = 'ghcr.io/demo/app';

let redis: TestRedis;
let reg: TestRegistry;
let sigstore: PrivateSigstore;
let stack: Stack;
let fx: DemoFixture;
let readApp: ReturnType<typeof createAppReader>;
let head: string | undefined;

/** Builds and publishes an image "from" a commit, with provenance signed by `builder`; sends GitHub's webhook. */
async function publish(commit: string, builder = TRUSTED): Promise<string> {
  const img = await pushTestImage(reg.url, 'demo/app');
  const bundle = await sigstore.signStatement(slsaV1Statement({ digest: img.digest, name: IMAGE, commit, repository: 'https://github.com/demo/app' }), { san: builder, issuer: GITHUB_ISSUER, sha: commit });
  await pushReferrerBundle(reg.url, 'demo/app', img.digest, bundle, { annotations: { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' } });
  await sendPackageEvent(img.digest);
  return img.digest;
}

async function sendPackageEvent(digest: string): Promise<void> {
  const body = JSON.stringify({
    action: 'published',
    registry_package: {
      name: 'app', namespace: 'demo', package_type: 'CONTAINER', owner: { login: 'demo' },
      package_version: { version: digest, container_metadata: { tag: { name: 'latest', digest } } },
    },
    repository: { full_name: 'demo/app', clone_url: 'https://github.com/demo/app.git' },
  });
  const res = await fetch(`${stack.receiverUrl}/webhooks/github`, { method: 'POST', headers: deliveryHeaders(stack.secrets[0]!, 'registry_package', body), body });
  expect(res.status).toBe(202);
}

async function pushCommit(): Promise<string> {
  const sha = fx.repo.commit(`change ${randomUUID().slice(0, 6)}`, { signWith: fx.key });
  fx.repo.push();
  expect((await sendPush(stack, sha, head)).status).toBe(202);
  head = sha;
  return sha;
}

async function imageDecision(digest: string): Promise<{ action: string; reason: string }> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { decisions } = (await (await fetch(`${gateUrlOf(stack)}/api/decisions?app=image:${IMAGE}&limit=100`)).json()) as { decisions: { newRevision?: string; action: string; reason: string }[] };
    const d = decisions.find((x) => x.newRevision === digest);
    if (d) return d;
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
  stack = await startStack({
    workDir, redisUrl: redis.url, seed: [app, policy], urlRewrites: fx.urlRewrites, queuePrefix: `img-${randomUUID().slice(0, 8)}`,
    env: { TRUSTED_ROOT_FILE: join(workDir, 'trusted_root.json'), REGISTRY_MIRRORS: JSON.stringify({ 'ghcr.io': reg.url }), REGISTRY_INSECURE_HOSTS: reg.url },
  });
  readApp = createAppReader(stack.kubeconfig);
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
    const hits = async () => Number(/gitops_gate_verdict_cache_lookups_total\{[^}]*kind="image"[^}]*result="hit"[^}]*\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${verifier.port}/metrics`)).text())?.[1] ?? 0);
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

  it('an image built by an untrusted workflow is rejected and does not pin', async () => {
    const before = await revision();
    const sha = await pushCommit();
    const digest = await publish(sha, UNTRUSTED);
    const d = await imageDecision(digest);
    expect(d.action).toBe('image-rejected');
    await sleep(1_000);
    expect(await revision()).toBe(before);
  });
});
