/**
 * OCI JSON documents as the distribution API returns them (manifests, image indexes, referrer lists, tag lists),
 * parsed and validated without any I/O: the HTTP client hands bytes here, and discovery reads descriptors from here.
 * Malformed documents are `OciError` INVALID_RESPONSE (an answer, not worth a retry).
 */
import { OciError } from './errors.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** A manifest as fetched: its digest (of the bytes received), media type, bytes and parsed JSON. */
export interface FetchedManifest {
  /** sha256 of the bytes, as received. */
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: Record<string, unknown>;
}

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new OciError('INVALID_RESPONSE', `${what} is not JSON`);
  }
  if (!isObject(v)) throw new OciError('INVALID_RESPONSE', `${what} is not a JSON object`);
  return v;
}

/** Validates one descriptor from an index or manifest; undefined when it is not usable. */
export function parseDescriptor(v: unknown): Descriptor | undefined {
  if (!isObject(v)) return undefined;
  const { mediaType, digest, size, artifactType, annotations } = v;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined;
  const d: Descriptor = { mediaType, digest, size };
  if (typeof artifactType === 'string') d.artifactType = artifactType;
  if (isObject(annotations)) {
    const a: Record<string, string> = {};
    for (const [k, val] of Object.entries(annotations)) if (typeof val === 'string') a[k] = val;
    d.annotations = a;
  }
  return d;
}

/** The descriptors of an image index (or referrers list); unusable entries are skipped, a non-index is refused. */
export function descriptorsOf(index: Record<string, unknown>, what: string): Descriptor[] {
  const list = index['manifests'];
  if (!Array.isArray(list)) throw new OciError('INVALID_RESPONSE', `${what} is not an image index`);
  const out: Descriptor[] = [];
  for (const m of list) {
    const d = parseDescriptor(m);
    if (d !== undefined) out.push(d);
  }
  return out;
}

/** A manifest's media type: the one it declares, else the Content-Type it was served with. */
export function manifestMediaType(json: Record<string, unknown>, contentType: string | null): string {
  const declared = typeof json['mediaType'] === 'string' ? json['mediaType'] : undefined;
  return declared ?? contentType?.split(';')[0]?.trim() ?? '';
}

/** The `tags` of one tag-list page (absent or null: none). */
export function parseTagList(body: Record<string, unknown>, what: string): string[] {
  const tags = body['tags'];
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags)) throw new OciError('INVALID_RESPONSE', `${what} is malformed`);
  return tags.filter((t): t is string => typeof t === 'string');
}
