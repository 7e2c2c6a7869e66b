// Issue #17 point 4: one pushed image cannot exhaust a verifier. The attacker is whoever can push to the image's
// repository (or the registry owner): they choose how many signature layers there are, how large each blob is, what
// sizes the descriptors declare, and how slowly the registry answers. Real Debian docker-registry on loopback.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier } from '@gitops-gate/bundle-verify';
import { pushBlob, pushManifest, pushTestImage, startTestRegistry } from '@gitops-gate/testing';
import type { TestRegistry } from '@gitops-gate/testing';
import { COSIGN_ANNOTATIONS, COSIGN_SIMPLE_SIGNING, DSSE_ENVELOPE } from './discover.js';
import { createRegistryClient } from './registry.js';
import { GITHUB_ISSUER, startPrivateSigstore } from './testing/private-sigstore.js';
import type { PrivateSigstore } from './testing/private-sigstore.js';
import { createImageVerifier } from './verify-image.js';
import type { ImageVerdict, ImageVerifier } from './verify-image.js';

const MiB = 1024 * 1024;
const SOURCE = { repository: 'https://github.com/org/app', branches: ['main'] };
const WORKFLOW = 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main';

let reg: TestRegistry;
let sigstore: PrivateSigstore;

beforeAll(async () => {
  [reg, sigstore] = await Promise.all([startTestRegistry(), startPrivateSigstore()]);
});
afterAll(async () => {
  await reg?.stop();
  await sigstore?.close();
});

/** A JSON DSSE-envelope-shaped blob of about `bytes` bytes: parsed and held by a verifier that reads it whole. */
function envelopeBlob(bytes: number): Buffer {
  const head = '{"payloadType":"application/vnd.in-toto+json","payload":"';
  const tail = '","signatures":[{"sig":"AAAA","keyid":""}]}';
  return Buffer.concat([Buffer.from(head), Buffer.alloc(bytes - head.length - tail.length, 0x41), Buffer.from(tail)]);
}

/**
 * cosign's legacy layout, hostile: `sha256-<hex>.sig` and `.att` with `layers` layers each, all pointing at one large
 * blob (stored once, served every time). `declare` is the size the descriptors claim (the attacker may lie).
 */
async function pushHostileLayout(
  repo: string,
  blobBytes: number,
  layers: number,
  declare?: number,
): Promise<{ image: string; digest: string }> {
  const img = await pushTestImage(reg.url, repo);
  const blob = await pushBlob(reg.url, repo, envelopeBlob(blobBytes));
  const config = await pushBlob(reg.url, repo, Buffer.from('{}'));
  for (const [suffix, mediaType] of [
    ['sig', COSIGN_SIMPLE_SIGNING],
    ['att', DSSE_ENVELOPE],
  ] as const) {
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: Array.from({ length: layers }, (_, i) => ({
        mediaType,
        digest: blob.digest,
        size: declare ?? blob.size,
        annotations: { [COSIGN_ANNOTATIONS.signature]: `MEUCIQ${i}` },
      })),
    };
    await pushManifest(
      reg.url,
      repo,
      `${img.digest.replace(':', '-')}.${suffix}`,
      Buffer.from(JSON.stringify(manifest)),
      'application/vnd.oci.image.manifest.v1+json',
    );
  }
  return { image: img.image, digest: img.digest };
}

/** Peak RSS growth of this process while `f` runs, sampled every 5 ms, with the time it took. */
async function measured<T>(f: () => Promise<T>): Promise<{ value: T; peakRssMiB: number; ms: number }> {
  globalThis.gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  const started = performance.now();
  try {
    const value = await f();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peakRssMiB: (peak - base) / MiB, ms: performance.now() - started };
  } finally {
    clearInterval(timer);
  }
}

function verifierWith(o: { fetch?: typeof fetch; deadlineMs?: number } = {}): ImageVerifier {
  const registry = createRegistryClient({ insecureHosts: [reg.url], ...(o.fetch === undefined ? {} : { fetch: o.fetch }) });
  return createImageVerifier({
    registry,
    bundleVerifier: createBundleVerifier(createBundleTrust(sigstore.trustedRoot)),
    ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }),
  });
}

const run = (v: ImageVerifier, img: { image: string; digest: string }): Promise<ImageVerdict> =>
  v.verifyImage({
    image: img.image,
    digest: img.digest,
    requirement: { repository: img.image, keyless: [{ identity: WORKFLOW, issuer: GITHUB_ISSUER }], requireProvenance: true },
    source: SOURCE,
  });

// The bound stated for one image job, whatever the layout: well under what a verifier has (1 GiB), with room for
// the HTTP client's own buffers and GC timing in a shared test process.
const RSS_BOUND_MIB = 96;

describe('one pushed image cannot exhaust a verifier', () => {
  it('32 .sig + 32 .att layers of 15 MiB (the reported layout): refused by size without reading them, IMAGE_MATERIAL_TOO_LARGE', async () => {
    const img = await pushHostileLayout('org/huge', 15 * MiB, 32);
    const { value: v, peakRssMiB, ms } = await measured(() => run(verifierWith(), img));
    console.log(`reported layout: peak RSS +${peakRssMiB.toFixed(1)} MiB, ${ms.toFixed(0)} ms`);
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_MATERIAL_TOO_LARGE' });
    expect(v.signatures.filter((s) => s.code === 'MATERIAL_TOO_LARGE')).toHaveLength(64);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });

  it('descriptors that understate the blob size do not get more bytes read than they declare', async () => {
    const img = await pushHostileLayout('org/liar', 15 * MiB, 32, 1000);
    const { value: v, peakRssMiB } = await measured(() => run(verifierWith(), img));
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_MATERIAL_TOO_LARGE' });
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });

  it('many blobs just under the per-blob cap exhaust the per-job budget: IMAGE_MATERIAL_TOO_LARGE, bounded memory', async () => {
    const img = await pushHostileLayout('org/many', 1000 * 1024, 32);
    const { value: v, peakRssMiB, ms } = await measured(() => run(verifierWith(), img));
    console.log(`budget layout (Content-Length): peak RSS +${peakRssMiB.toFixed(1)} MiB, ${ms.toFixed(0)} ms`);
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_MATERIAL_TOO_LARGE' });
    expect(v.reason).toMatch(/8388608-byte budget/);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });

  it('the budget holds when the registry sends no Content-Length (bytes are counted as they arrive)', async () => {
    const chunked = (async (u: URL | string | Request, init?: RequestInit) => {
      const res = await fetch(u, init);
      const headers = new Headers(res.headers);
      headers.delete('content-length');
      return new Response(res.body, { status: res.status, headers });
    }) as typeof fetch;
    const img = await pushHostileLayout('org/chunked', 1000 * 1024, 32);
    const { value: v, peakRssMiB, ms } = await measured(() => run(verifierWith({ fetch: chunked }), img));
    console.log(`budget layout (no Content-Length): peak RSS +${peakRssMiB.toFixed(1)} MiB, ${ms.toFixed(0)} ms`);
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_MATERIAL_TOO_LARGE' });
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('one slow registry cannot hold a verifier', () => {
  let tarpit: Server;
  let host: string;
  beforeAll(async () => {
    // Answers the headers and a few bytes of a manifest, then nothing more: a registry (or a redirect target) that
    // keeps a verifier's connection and job slot for as long as the verifier lets it.
    tarpit = createServer((req, res) => {
      if ((req.url ?? '').includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '4096' });
        res.write('{"schemaVersion":2,');
        return;
      }
      // Everything else: not even headers.
    });
    await new Promise<void>((r) => tarpit.listen(0, '127.0.0.1', () => r()));
    host = `127.0.0.1:${(tarpit.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    tarpit.closeAllConnections();
    await new Promise<void>((r) => tarpit.close(() => r()));
  });

  it('a stalled response ends the job at its deadline with IMAGE_VERIFY_DEADLINE', { timeout: 10_000 }, async () => {
    const registry = createRegistryClient({ insecureHosts: [host] });
    const verifier = createImageVerifier({
      registry,
      bundleVerifier: createBundleVerifier(createBundleTrust(sigstore.trustedRoot)),
      deadlineMs: 500,
    });
    const started = performance.now();
    const v = await verifier.verifyImage({
      image: `${host}/org/app`,
      digest: `sha256:${'a'.repeat(64)}`,
      requirement: { repository: `${host}/org/app`, keyless: [{ identity: WORKFLOW, issuer: GITHUB_ISSUER }] },
      source: SOURCE,
    });
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_VERIFY_DEADLINE' });
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('the caller can end a job early with its own signal (shutdown)', { timeout: 10_000 }, async () => {
    const registry = createRegistryClient({ insecureHosts: [host] });
    const verifier = createImageVerifier({ registry, bundleVerifier: createBundleVerifier(createBundleTrust(sigstore.trustedRoot)) });
    const v = await verifier.verifyImage({
      image: `${host}/org/app`,
      digest: `sha256:${'b'.repeat(64)}`,
      requirement: { repository: `${host}/org/app`, keyless: [{ identity: WORKFLOW, issuer: GITHUB_ISSUER }] },
      source: SOURCE,
      signal: AbortSignal.timeout(300),
    });
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_VERIFY_DEADLINE' });
  });
});
