/**
 * Finds the Sigstore material published for an image digest, the ways real tools publish it:
 *  - OCI 1.1 referrers whose artifact is a Sigstore bundle (`cosign --new-bundle-format`, cosign v3,
 *    actions/attest-build-provenance with push-to-registry): the bundle JSON is the manifest's layer blob;
 *  - cosign's legacy tags `sha256-<hex>.sig` (simple-signing payload layers; signature, certificate and Rekor SET in
 *    annotations) and `sha256-<hex>.att` (DSSE envelopes of in-toto statements, same annotations).
 *
 * Legacy material is converted into a v0.1 Sigstore bundle (message signature or DSSE envelope, the leaf certificate
 * or a key hint, and the Rekor entry with its signed entry timestamp) so one verifier checks everything. Nothing here
 * is trusted: the caller verifies each item. Items that cannot even be read become `problems`; transient registry
 * trouble is thrown.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { createHash } from 'node:crypto';
import type { Artifact } from '@gitops-gate/bundle-verify';
import { COSTLY_REJECTIONS, OciError } from './errors.js';
import type { JobLimits } from './errors.js';
import { parseSha256Digest } from './reference.js';
import { MEDIA_TYPES, parseDescriptor, type Descriptor, type FetchedManifest } from './oci-documents.js';
import type { RegistryClient } from './registry.js';

export const SIGSTORE_BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const COSIGN_SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json';
const BUNDLE_V01 = 'application/vnd.dev.sigstore.bundle+json;version=0.1';

export const COSIGN_ANNOTATIONS = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  bundle: 'dev.sigstore.cosign/bundle',
} as const;

export type MaterialSource = 'referrer' | 'cosign-signature' | 'cosign-attestation';

export interface SigstoreMaterial {
  source: MaterialSource;
  /** Where it was found, for reasons and audit: `referrer sha256:…`, `sha256-<hex>.sig layer sha256:…`. */
  location: string;
  /** 'attestation' when the content is a DSSE envelope (an in-toto statement), 'signature' otherwise. */
  kind: 'signature' | 'attestation';
  /** A Sigstore bundle JSON object (legacy material converted to a v0.1 bundle). */
  bundle: Record<string, unknown>;
  /** What the bundle must be verified against. */
  artifact: Artifact;
  /** cosign `.sig` only: the signed simple-signing payload; its docker-manifest-digest must be the image digest. */
  simpleSigningPayload?: Buffer;
  /** The predicateType the (not yet verified) statement claims; for classification only. */
  claimedPredicateType?: string;
}

export interface MaterialProblem {
  source: MaterialSource;
  location: string;
  code: string;
  reason: string;
}

export interface Discovery {
  materials: SigstoreMaterial[];
  problems: MaterialProblem[];
  referrersVia: 'api' | 'tag-schema';
}

export interface DiscoverOptions {
  /** Upper bound on referrer manifests and on layers per legacy tag looked at (a registry can list thousands). */
  maxItems?: number;
  /**
   * Largest signature blob read (bundle, `.sig` payload, `.att` envelope). Sigstore material is kilobytes: a bundle
   * with its certificate and log entry is 5–15 KiB, a GitHub SLSA provenance envelope 10–30 KiB.
   */
  maxSignatureBytes?: number;
  /** The job's byte budget and deadline; running out of either ends discovery (thrown, not a problem). */
  limits?: JobLimits;
  /**
   * Verify-and-drop: each material is handed over as soon as it is read and not kept (`materials` stays empty), so
   * a job holds one item's bytes at a time rather than all of them.
   */
  onMaterial?: (m: SigstoreMaterial) => void;
}

export const DEFAULT_MAX_SIGNATURE_BYTES = 1024 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class MaterialError extends BaseError<'MATERIAL_INVALID' | 'SUBJECT_MISMATCH'> {}

function pemToDerBase64(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/.exec(pem);
  if (m === null) throw new MaterialError('MATERIAL_INVALID', 'certificate annotation is not a PEM certificate');
  return m[1]!.replace(/\s+/g, '');
}

/** cosign's `dev.sigstore.cosign/bundle` annotation (a Rekor entry with its SET) → a bundle tlog entry. */
function tlogEntryFromAnnotation(text: string): Record<string, unknown> {
  let rb: unknown;
  try {
    rb = JSON.parse(text);
  } catch {
    throw new MaterialError('MATERIAL_INVALID', 'Rekor bundle annotation is not JSON');
  }
  if (!isObject(rb) || !isObject(rb['Payload']) || typeof rb['SignedEntryTimestamp'] !== 'string') {
    throw new MaterialError('MATERIAL_INVALID', 'Rekor bundle annotation lacks Payload or SignedEntryTimestamp');
  }
  const p = rb['Payload'];
  const { body, integratedTime, logIndex, logID } = p;
  if (typeof body !== 'string' || typeof logID !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(logID)) {
    throw new MaterialError('MATERIAL_INVALID', 'Rekor bundle annotation payload is malformed');
  }
  if (
    !Number.isSafeInteger(integratedTime) ||
    !Number.isSafeInteger(logIndex) ||
    (integratedTime as number) < 0 ||
    (logIndex as number) < 0
  ) {
    throw new MaterialError('MATERIAL_INVALID', 'Rekor bundle annotation has a bad integrated time or log index');
  }
  let entry: unknown;
  try {
    entry = JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
  } catch {
    throw new MaterialError('MATERIAL_INVALID', 'Rekor entry body is not base64 JSON');
  }
  if (!isObject(entry) || typeof entry['kind'] !== 'string' || typeof entry['apiVersion'] !== 'string') {
    throw new MaterialError('MATERIAL_INVALID', 'Rekor entry body has no kind/apiVersion');
  }
  return {
    logIndex: String(logIndex),
    logId: { keyId: Buffer.from(logID, 'hex').toString('base64') },
    // The verifier re-checks these against the body; they are copied, not trusted.
    kindVersion: { kind: entry['kind'], version: entry['apiVersion'] },
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: rb['SignedEntryTimestamp'] },
    canonicalizedBody: body,
  };
}

function verificationMaterial(annotations: Record<string, string>): Record<string, unknown> {
  const cert = annotations[COSIGN_ANNOTATIONS.certificate];
  const bundleAnn = annotations[COSIGN_ANNOTATIONS.bundle];
  const tlogEntries = bundleAnn === undefined || bundleAnn === '' ? [] : [tlogEntryFromAnnotation(bundleAnn)];
  // Only the leaf is carried: the chain annotation is not trusted (the trusted root is), and a root certificate inside
  // a bundle is malformed for the verifier.
  const material =
    cert !== undefined && cert !== ''
      ? { x509CertificateChain: { certificates: [{ rawBytes: pemToDerBase64(cert) }] } }
      : { publicKey: { hint: '' } };
  return { ...material, tlogEntries };
}

function claimedPredicateType(payloadB64: unknown, payloadType: unknown): string | undefined {
  if (payloadType !== 'application/vnd.in-toto+json' || typeof payloadB64 !== 'string') return undefined;
  try {
    const s: unknown = JSON.parse(Buffer.from(payloadB64, 'base64').toString('utf8'));
    return isObject(s) && typeof s['predicateType'] === 'string' ? s['predicateType'] : undefined;
  } catch {
    return undefined;
  }
}

function layersOf(m: FetchedManifest): Descriptor[] {
  const layers = m.json['layers'];
  if (!Array.isArray(layers)) return [];
  const out: Descriptor[] = [];
  for (const l of layers) {
    const d = parseDescriptor(l);
    if (d !== undefined) out.push(d);
  }
  return out;
}

function isImageManifest(m: FetchedManifest): boolean {
  return (
    m.mediaType === MEDIA_TYPES.ociManifest ||
    m.mediaType === MEDIA_TYPES.dockerManifest ||
    (m.mediaType === '' && Array.isArray(m.json['layers']))
  );
}

export async function discoverSigstoreMaterial(
  registry: RegistryClient,
  image: string,
  digest: string,
  opts: DiscoverOptions = {},
): Promise<Discovery> {
  const hex = parseSha256Digest(digest);
  const maxItems = opts.maxItems ?? 32;
  const maxSig = opts.maxSignatureBytes ?? DEFAULT_MAX_SIGNATURE_BYTES;
  const limits = opts.limits;
  const found: SigstoreMaterial[] = [];
  const materials = { push: (m: SigstoreMaterial): void => (opts.onMaterial === undefined ? void found.push(m) : opts.onMaterial(m)) };
  const problems: MaterialProblem[] = [];
  const imageArtifact: Artifact = { digest: { algorithm: 'sha256', hex } };

  /** Runs one item; non-transient registry errors and malformed material become problems. */
  const attempt = async (source: MaterialSource, location: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (e) {
      if (e instanceof OciError && (e.transient || COSTLY_REJECTIONS.has(e.code))) throw e;
      if (e instanceof OciError && e.code === 'TOO_LARGE')
        problems.push({ source, location, code: 'MATERIAL_TOO_LARGE', reason: e.message });
      else if (e instanceof OciError || e instanceof MaterialError) problems.push({ source, location, code: e.code, reason: e.message });
      else throw e;
    }
  };

  // 1. OCI referrers (API or tag schema).
  /** Signature blobs: refused by their declared size before a byte is read, and read with at most that many bytes. */
  const signatureBlob = async (d: Descriptor): Promise<Buffer> => {
    if (d.size > maxSig)
      throw new OciError('TOO_LARGE', `blob ${d.digest} is ${d.size} bytes, over the ${maxSig}-byte limit for signature material`);
    return registry.getBlob(image, d.digest, { maxBytes: d.size, ...limits });
  };

  const referrers = await registry.getReferrers(image, digest, limits);
  const candidates = referrers.manifests.filter((d) => d.artifactType === SIGSTORE_BUNDLE_V03 || d.artifactType === undefined);
  if (candidates.length > maxItems) {
    problems.push({
      source: 'referrer',
      location: `referrers of ${digest}`,
      code: 'TOO_MANY',
      reason: `${candidates.length} referrers; only the first ${maxItems} are looked at`,
    });
  }
  for (const d of candidates.slice(0, maxItems)) {
    const location = `referrer ${d.digest}`;
    await attempt('referrer', location, async () => {
      const m = await registry.getManifest(image, d.digest, limits);
      const artifactType = typeof m.json['artifactType'] === 'string' ? m.json['artifactType'] : undefined;
      const config = parseDescriptor(m.json['config']);
      if ((artifactType ?? config?.mediaType) !== SIGSTORE_BUNDLE_V03) return; // Some other kind of referrer.
      const subject = parseDescriptor(m.json['subject']);
      if (subject === undefined || subject.digest !== digest) {
        throw new MaterialError('SUBJECT_MISMATCH', `referrer manifest names subject ${subject?.digest ?? 'none'}, not ${digest}`);
      }
      const layer = layersOf(m).find((l) => l.mediaType === SIGSTORE_BUNDLE_V03);
      if (layer === undefined) throw new MaterialError('MATERIAL_INVALID', 'referrer manifest has no Sigstore bundle layer');
      const bytes = await signatureBlob(layer);
      let bundle: unknown;
      try {
        bundle = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw new MaterialError('MATERIAL_INVALID', 'bundle layer is not JSON');
      }
      if (!isObject(bundle)) throw new MaterialError('MATERIAL_INVALID', 'bundle layer is not a JSON object');
      const env = bundle['dsseEnvelope'];
      const item: SigstoreMaterial = {
        source: 'referrer',
        location,
        kind: isObject(env) ? 'attestation' : 'signature',
        bundle,
        artifact: imageArtifact,
      };
      const pt = isObject(env) ? claimedPredicateType(env['payload'], env['payloadType']) : undefined;
      if (pt !== undefined) item.claimedPredicateType = pt;
      materials.push(item);
    });
  }

  // 2. cosign legacy tags.
  for (const [suffix, source] of [
    ['sig', 'cosign-signature'],
    ['att', 'cosign-attestation'],
  ] as const) {
    const tag = `sha256-${hex}.${suffix}`;
    let m: FetchedManifest | undefined;
    await attempt(source, tag, async () => {
      try {
        m = await registry.getManifest(image, tag, limits);
      } catch (e) {
        if (e instanceof OciError && e.code === 'NOT_FOUND') return;
        throw e;
      }
      if (!isImageManifest(m)) throw new MaterialError('MATERIAL_INVALID', `${tag} is not an image manifest`);
    });
    if (m === undefined) continue;
    const wantedType = source === 'cosign-signature' ? COSIGN_SIMPLE_SIGNING : DSSE_ENVELOPE;
    const layers = layersOf(m).filter((l) => l.mediaType === wantedType);
    if (layers.length > maxItems) {
      problems.push({
        source,
        location: tag,
        code: 'TOO_MANY',
        reason: `${layers.length} layers; only the first ${maxItems} are looked at`,
      });
    }
    for (const layer of layers.slice(0, maxItems)) {
      const location = `${tag} layer ${layer.digest}`;
      await attempt(source, location, async () => {
        const annotations = layer.annotations ?? {};
        const blob = await signatureBlob(layer);
        if (source === 'cosign-signature') {
          const sig = annotations[COSIGN_ANNOTATIONS.signature];
          if (sig === undefined || sig === '') throw new MaterialError('MATERIAL_INVALID', 'layer has no signature annotation');
          const bundle = {
            mediaType: BUNDLE_V01,
            verificationMaterial: verificationMaterial(annotations),
            messageSignature: {
              messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(blob).digest('base64') },
              signature: sig,
            },
          };
          materials.push({ source, location, kind: 'signature', bundle, artifact: { data: blob }, simpleSigningPayload: blob });
          return;
        }
        let env: unknown;
        try {
          env = JSON.parse(blob.toString('utf8'));
        } catch {
          throw new MaterialError('MATERIAL_INVALID', 'attestation layer is not a JSON DSSE envelope');
        }
        if (!isObject(env)) throw new MaterialError('MATERIAL_INVALID', 'attestation layer is not a JSON DSSE envelope');
        const bundle = {
          mediaType: BUNDLE_V01,
          verificationMaterial: verificationMaterial(annotations),
          dsseEnvelope: { payload: env['payload'], payloadType: env['payloadType'], signatures: env['signatures'] },
        };
        const item: SigstoreMaterial = { source, location, kind: 'attestation', bundle, artifact: imageArtifact };
        const pt = claimedPredicateType(env['payload'], env['payloadType']);
        if (pt !== undefined) item.claimedPredicateType = pt;
        materials.push(item);
      });
    }
  }

  return { materials: found, problems, referrersVia: referrers.via };
}
