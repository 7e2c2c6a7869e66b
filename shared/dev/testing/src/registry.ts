/**
 * A real OCI registry for tests — Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port with
 * filesystem storage in a temp dir — and helpers that push content to it the way real tools do, with our own HTTP
 * code (no docker, no cosign binary): images, Sigstore bundles as OCI 1.1 referrers (plus the referrers tag schema,
 * because distribution 2.8 has no referrers API), and cosign's legacy `sha256-<hex>.sig` / `.att` layouts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './redis.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** `127.0.0.1:PORT` — the registry host as it appears in image names. */
  url: string;
  port: number;
  /** Root of the filesystem storage (blobs live under docker/registry/v2/blobs/sha256/<2>/<hex>/data). */
  storageDir: string;
  /** Path of the stored bytes of a blob or manifest, for tamper tests. */
  blobPath(digest: string): string;
  stop(): Promise<void>;
}

export interface TestRegistryOptions {
  /** distribution's `auth: token` (bearer tokens from a token server; JWTs checked against rootCertBundlePem). */
  tokenAuth?: { realm: string; service: string; issuer: string; rootCertBundlePem: string };
}

function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export async function startTestRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BINARY)) throw new Error(`${REGISTRY_BINARY} is missing (apt-get install docker-registry)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gg-registry-'));
  const storageDir = join(dir, 'data');
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  // No blob descriptor cache: tamper tests change stored bytes behind the registry's back.
  if (opts.tokenAuth !== undefined) {
    const bundle = join(dir, 'token-roots.pem');
    writeFileSync(bundle, opts.tokenAuth.rootCertBundlePem);
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(opts.tokenAuth.realm)}`,
      `    service: ${JSON.stringify(opts.tokenAuth.service)}`,
      `    issuer: ${JSON.stringify(opts.tokenAuth.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(bundle)}`,
    );
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const proc: ChildProcess = spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 400; i++) {
    if (proc.exitCode !== null) break;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) {
        return {
          url: `127.0.0.1:${port}`,
          port,
          storageDir,
          blobPath: (digest: string) => {
            const hex = digest.replace(/^sha256:/, '');
            return join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
          },
          stop,
        };
      }
    } catch {
      // Not listening yet.
    }
    await sleep(25);
  }
  await stop();
  throw new Error(`docker-registry did not start on port ${port}: ${stderr.slice(0, 2000)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Pushing

export interface PushOptions {
  /** Authorization header value (e.g. `Bearer …`) for registries that require auth. */
  authorization?: string;
}

function headersOf(o: PushOptions | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return o?.authorization === undefined ? extra : { ...extra, authorization: o.authorization };
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
}

export async function pushBlob(
  registry: string,
  repository: string,
  bytes: Uint8Array,
  o?: PushOptions,
): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  const base = `http://${registry}`;
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: headersOf(o) });
  await expectStatus(start, [202], `start upload to ${repository}`);
  await start.body?.cancel();
  const location = new URL(start.headers.get('location') ?? '', base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: headersOf(o, { 'content-type': 'application/octet-stream' }),
    body: Buffer.from(bytes),
  });
  await expectStatus(put, [201], `upload blob ${digest}`);
  await put.body?.cancel();
  return { digest, size: bytes.byteLength };
}

/** PUTs a manifest under a tag or its digest; returns its digest. */
export async function pushManifest(
  registry: string,
  repository: string,
  reference: string | undefined,
  bytes: Uint8Array,
  mediaType: string,
  o?: PushOptions,
): Promise<string> {
  const digest = sha256(bytes);
  const res = await fetch(`http://${registry}/v2/${repository}/manifests/${reference ?? digest}`, {
    method: 'PUT',
    headers: headersOf(o, { 'content-type': mediaType }),
    body: Buffer.from(bytes),
  });
  await expectStatus(res, [201], `push manifest ${repository}:${reference ?? digest}`);
  await res.body?.cancel();
  return digest;
}

/** GETs a manifest; undefined on 404. */
export async function getTestManifest(
  registry: string,
  repository: string,
  reference: string,
  o?: PushOptions,
): Promise<{ bytes: Buffer; json: Record<string, unknown>; mediaType: string } | undefined> {
  const res = await fetch(`http://${registry}/v2/${repository}/manifests/${reference}`, {
    headers: headersOf(o, { accept: [OCI_MANIFEST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ') }),
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  await expectStatus(res, [200], `get manifest ${repository}:${reference}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  return { bytes, json, mediaType: (json['mediaType'] as string | undefined) ?? res.headers.get('content-type') ?? '' };
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const SIGSTORE_BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const COSIGN_SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json';

export interface PushedImage {
  /** `127.0.0.1:PORT/<repository>` */
  image: string;
  digest: string;
  manifest: Buffer;
  size: number;
}

/** A small single-layer OCI image (config + one random or given layer + manifest), tagged `tag` (default latest). */
export async function pushTestImage(
  registry: string,
  repository: string,
  o: PushOptions & { tag?: string; layer?: Uint8Array } = {},
): Promise<PushedImage> {
  const layer = o.layer ?? randomBytes(64);
  const l = await pushBlob(registry, repository, layer, o);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [l.digest] } }),
  );
  const c = await pushBlob(registry, repository, config, o);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: c.digest, size: c.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size }],
    }),
  );
  const digest = await pushManifest(registry, repository, o.tag ?? 'latest', manifest, OCI_MANIFEST, o);
  return { image: `${registry}/${repository}`, digest, manifest, size: manifest.length };
}

export interface PushReferrerOptions extends PushOptions {
  /** Manifest annotations (e.g. dev.sigstore.bundle.predicateType). */
  annotations?: Record<string, string>;
  /**
   * Update the referrers tag schema (`sha256-<hex>` index): 'auto' (default) does it when the registry has no
   * referrers API, which is the case for distribution 2.8.
   */
  tagSchema?: 'auto' | 'always' | 'never';
  /** Subject to name in the manifest, when it should differ from `subjectDigest` (tests of mismatched subjects). */
  subjectOverride?: { digest: string; mediaType: string; size: number };
}

async function subjectDescriptor(
  registry: string,
  repository: string,
  digest: string,
  o?: PushOptions,
): Promise<{ digest: string; mediaType: string; size: number }> {
  const m = await getTestManifest(registry, repository, digest, o);
  if (m === undefined) throw new Error(`subject ${digest} is not in ${repository}`);
  return { digest, mediaType: m.mediaType, size: m.bytes.length };
}

async function addToReferrersIndex(
  registry: string,
  repository: string,
  subjectDigest: string,
  entry: Record<string, unknown>,
  o: PushReferrerOptions,
): Promise<void> {
  const mode = o.tagSchema ?? 'auto';
  if (mode === 'never') return;
  if (mode === 'auto') {
    const probe = await fetch(`http://${registry}/v2/${repository}/referrers/${subjectDigest}`, { headers: headersOf(o) });
    await probe.body?.cancel();
    if (probe.status === 200) return;
  }
  const tag = subjectDigest.replace(':', '-');
  const existing = await getTestManifest(registry, repository, tag, o);
  const manifests = Array.isArray(existing?.json['manifests']) ? (existing.json['manifests'] as Array<Record<string, unknown>>) : [];
  if (!manifests.some((m) => m['digest'] === entry['digest'])) manifests.push(entry);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  await pushManifest(registry, repository, tag, index, OCI_INDEX, o);
}

/** Pushes a Sigstore bundle the way cosign's bundle spec / actions/attest-build-provenance do; returns the referrer manifest digest. */
export async function pushReferrerBundle(
  registry: string,
  repository: string,
  subjectDigest: string,
  bundle: string | object,
  o: PushReferrerOptions = {},
): Promise<string> {
  const bundleBytes = Buffer.from(typeof bundle === 'string' ? bundle : JSON.stringify(bundle));
  const empty = await pushBlob(registry, repository, Buffer.from('{}'), o);
  const b = await pushBlob(registry, repository, bundleBytes, o);
  const subject = o.subjectOverride ?? (await subjectDescriptor(registry, repository, subjectDigest, o));
  const manifestJson: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIGSTORE_BUNDLE_V03,
    config: { mediaType: OCI_EMPTY, digest: empty.digest, size: empty.size },
    layers: [
      {
        mediaType: SIGSTORE_BUNDLE_V03,
        digest: b.digest,
        size: b.size,
        annotations: { 'org.opencontainers.image.title': `${b.digest.replace(':', '-')}.sigstore.json` },
      },
    ],
    subject,
  };
  if (o.annotations !== undefined) manifestJson['annotations'] = o.annotations;
  const manifest = Buffer.from(JSON.stringify(manifestJson));
  const digest = await pushManifest(registry, repository, undefined, manifest, OCI_MANIFEST, o);
  const entry: Record<string, unknown> = { mediaType: OCI_MANIFEST, digest, size: manifest.length, artifactType: SIGSTORE_BUNDLE_V03 };
  if (o.annotations !== undefined) entry['annotations'] = o.annotations;
  await addToReferrersIndex(registry, repository, subjectDigest, entry, o);
  return digest;
}

/** cosign's simple-signing payload for an image digest. */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

export interface CosignLayerMaterial {
  certificatePem?: string;
  chainPem?: string;
  /** The `dev.sigstore.cosign/bundle` value: `{SignedEntryTimestamp, Payload: {body, integratedTime, logIndex, logID}}`. */
  rekorBundle?: object | string;
  /** Further layer annotations. */
  annotations?: Record<string, string>;
}

/** Appends one layer to cosign's `sha256-<hex>.<suffix>` tag manifest (creating it), as cosign does. */
async function appendCosignLayer(
  registry: string,
  repository: string,
  imageDigest: string,
  suffix: 'sig' | 'att',
  layerBytes: Buffer,
  mediaType: string,
  annotations: Record<string, string>,
  o?: PushOptions,
): Promise<string> {
  const tag = `${imageDigest.replace(':', '-')}.${suffix}`;
  const l = await pushBlob(registry, repository, layerBytes, o);
  const existing = await getTestManifest(registry, repository, tag, o);
  const layers = Array.isArray(existing?.json['layers']) ? (existing.json['layers'] as Array<Record<string, unknown>>) : [];
  layers.push({ mediaType, size: l.size, digest: l.digest, annotations });
  const config = Buffer.from(
    JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((x) => x['digest']) } }),
  );
  const c = await pushBlob(registry, repository, config, o);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: c.size, digest: c.digest },
      layers,
    }),
  );
  return pushManifest(registry, repository, tag, manifest, OCI_MANIFEST, o);
}

function cosignAnnotations(m: CosignLayerMaterial): Record<string, string> {
  const a: Record<string, string> = {};
  if (m.certificatePem !== undefined) a['dev.sigstore.cosign/certificate'] = m.certificatePem;
  if (m.chainPem !== undefined) a['dev.sigstore.cosign/chain'] = m.chainPem;
  if (m.rekorBundle !== undefined)
    a['dev.sigstore.cosign/bundle'] = typeof m.rekorBundle === 'string' ? m.rekorBundle : JSON.stringify(m.rekorBundle);
  return { ...a, ...m.annotations };
}

/** A cosign legacy signature: the simple-signing payload as a layer of `sha256-<hex>.sig`. Returns the tag manifest digest. */
export async function pushCosignSignature(
  registry: string,
  repository: string,
  imageDigest: string,
  sig: CosignLayerMaterial & { payload: Uint8Array; signatureBase64: string },
  o?: PushOptions,
): Promise<string> {
  const annotations = { 'dev.cosignproject.cosign/signature': sig.signatureBase64, ...cosignAnnotations(sig) };
  return appendCosignLayer(registry, repository, imageDigest, 'sig', Buffer.from(sig.payload), COSIGN_SIMPLE_SIGNING, annotations, o);
}

/** A cosign legacy attestation: the DSSE envelope JSON as a layer of `sha256-<hex>.att`. Returns the tag manifest digest. */
export async function pushCosignAttestation(
  registry: string,
  repository: string,
  imageDigest: string,
  att: CosignLayerMaterial & { envelope: object | string; predicateType?: string },
  o?: PushOptions,
): Promise<string> {
  const annotations: Record<string, string> = cosignAnnotations(att);
  if (att.predicateType !== undefined) annotations['predicateType'] = att.predicateType;
  const bytes = Buffer.from(typeof att.envelope === 'string' ? att.envelope : JSON.stringify(att.envelope));
  return appendCosignLayer(registry, repository, imageDigest, 'att', bytes, DSSE_ENVELOPE, annotations, o);
}
