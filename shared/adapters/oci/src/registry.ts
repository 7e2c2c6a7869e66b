/**
 * A small read-only OCI distribution client on `fetch`: manifests and blobs by digest (the bytes are hashed and must
 * match the digest asked for), tags, and referrers (the OCI 1.1 API, falling back to the referrers tag schema when the
 * registry answers 404). Auth: anonymous, the bearer-token handshake announced in `WWW-Authenticate` (tokens cached
 * per scope), basic, or a configured bearer token.
 *
 * Failures are `OciError`s; `transient` ones (5xx, 429, network) are worth retrying, the others are answers.
 */
import { OciError, type JobLimits } from './errors.js';
import {
  MEDIA_TYPES,
  descriptorsOf,
  manifestMediaType,
  parseJsonObject,
  parseTagList,
  type Descriptor,
  type FetchedManifest,
} from './oci-documents.js';
import { parseImageName, parseSha256Digest, type ImageName } from './reference.js';
import { createRegistryAuth, type RegistryCredential } from './registry-auth.js';
import { createFetchFollow, discard, nextLink, readLimited, sha256Hex } from './registry-http.js';
import { registryRequest, type RegistryConnection, type RequestSpec } from './registry-request.js';

// The parsing module and the auth unit own these; re-exported so the client's API reads as one.
export { MEDIA_TYPES, parseDescriptor, type Descriptor, type FetchedManifest } from './oci-documents.js';
export type { RegistryCredential } from './registry-auth.js';

export interface RegistryClientOptions {
  /** By registry host as written in image names (`ghcr.io`, `localhost:5000`; `docker.io` for Docker Hub). */
  credentials?: Record<string, RegistryCredential>;
  /** Hosts spoken to over plain http (loopback test registries). Everything else is https only. */
  insecureHosts?: string[];
  /**
   * By registry host: token-service origins (`https://auth.example`) besides the registry's own whose bearer realms
   * may receive the registry's credentials. Docker Hub's `https://auth.docker.io` is built in.
   */
  tokenRealms?: Record<string, string[]>;
  fetch?: typeof fetch;
  /** Largest manifest accepted (the distribution spec suggests registries accept at least 4 MiB). */
  maxManifestBytes?: number;
  /** Default cap for blobs; signature material is small, so the default is modest. */
  maxBlobBytes?: number;
  /** Clock for token expiry (tests); defaults to Date.now. */
  now?: () => number;
}

export interface ReferrersResult {
  manifests: Descriptor[];
  /** Where the list came from: the referrers API, or the `sha256-<hex>` tag of the referrers tag schema. */
  via: 'api' | 'tag-schema';
}

/**
 * `limits` (optional everywhere): the job's byte budget, charged with every body byte read (over it:
 * IMAGE_MATERIAL_TOO_LARGE), and its deadline signal (aborted: IMAGE_VERIFY_DEADLINE). Both are final answers.
 */
export interface RegistryClient {
  /** `reference` is a digest (then the bytes must hash to it) or a tag. Missing → OciError NOT_FOUND. */
  getManifest(image: string, reference: string, limits?: JobLimits): Promise<FetchedManifest>;
  getBlob(image: string, digest: string, opts?: { maxBytes?: number } & JobLimits): Promise<Buffer>;
  listTags(image: string): Promise<string[]>;
  getReferrers(image: string, digest: string, opts?: { artifactType?: string } & JobLimits): Promise<ReferrersResult>;
}

const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList].join(', ');
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_PAGES = 50;

export function createRegistryClient(opts: RegistryClientOptions = {}): RegistryClient {
  const insecure = new Set((opts.insecureHosts ?? []).map((h) => h.toLowerCase()));
  const maxManifest = opts.maxManifestBytes ?? 4 * 1024 * 1024;
  const maxBlob = opts.maxBlobBytes ?? 16 * 1024 * 1024;
  const names = new Map<string, ImageName>();

  const nameOf = (image: string): ImageName => {
    let n = names.get(image);
    if (n === undefined) {
      n = parseImageName(image);
      if (names.size > 1000) names.clear();
      names.set(image, n);
    }
    return n;
  };

  const isInsecure = (host: string): boolean => insecure.has(host.toLowerCase());
  const baseUrl = (n: ImageName): string => `${isInsecure(n.apiHost) || isInsecure(n.host) ? 'http' : 'https'}://${n.apiHost}`;
  const fetchFollow = createFetchFollow(opts.fetch ?? fetch, isInsecure);
  const { cachedAuthorization, answerChallenge } = createRegistryAuth({
    credentials: opts.credentials,
    tokenRealms: opts.tokenRealms,
    now: opts.now ?? Date.now,
    fetchFollow,
    isInsecure,
    baseUrl,
  });
  const connection: RegistryConnection = { baseUrl, fetchFollow, cachedAuthorization, answerChallenge };
  const request = (n: ImageName, spec: RequestSpec) => registryRequest(connection, n, spec);

  async function getManifest(image: string, reference: string, limits?: JobLimits): Promise<FetchedManifest> {
    const n = nameOf(image);
    const byDigest = reference.includes(':');
    const hex = byDigest ? parseSha256Digest(reference) : undefined;
    if (!byDigest && !TAG.test(reference))
      throw new OciError('INVALID_REFERENCE', `invalid tag ${JSON.stringify(reference.slice(0, 200))}`);
    const { res } = await request(n, { path: `manifests/${reference}`, accept: MANIFEST_ACCEPT, limits });
    const bytes = await readLimited(res, maxManifest, `manifest ${n.name}@${reference}`, limits);
    const actual = sha256Hex(bytes);
    if (hex !== undefined && actual !== hex) {
      throw new OciError('DIGEST_MISMATCH', `manifest ${n.name}@${reference}: the registry returned bytes with digest sha256:${actual}`);
    }
    const json = parseJsonObject(bytes, `manifest ${n.name}@${reference}`);
    return { digest: `sha256:${actual}`, mediaType: manifestMediaType(json, res.headers.get('content-type')), bytes, json };
  }

  async function getBlob(image: string, digest: string, o?: { maxBytes?: number } & JobLimits): Promise<Buffer> {
    const n = nameOf(image);
    const hex = parseSha256Digest(digest);
    const { res } = await request(n, { path: `blobs/${digest}`, limits: o });
    const bytes = await readLimited(res, o?.maxBytes ?? maxBlob, `blob ${n.name}@${digest}`, o);
    const actual = sha256Hex(bytes);
    if (actual !== hex)
      throw new OciError('DIGEST_MISMATCH', `blob ${n.name}@${digest}: the registry returned bytes with digest sha256:${actual}`);
    return bytes;
  }

  async function listTags(image: string): Promise<string[]> {
    const n = nameOf(image);
    const out: string[] = [];
    let path = 'tags/list?n=1000';
    for (let page = 0; page < MAX_PAGES; page++) {
      const { res, url } = await request(n, { path, accept: 'application/json' });
      const what = `tag list of ${n.name}`;
      out.push(...parseTagList(parseJsonObject(await readLimited(res, maxManifest, what), what), what));
      const next = nextLink(res, url);
      if (next === undefined) return out;
      const prefix = `/v2/${n.repository}/`;
      if (!next.pathname.startsWith(prefix)) return out;
      path = next.pathname.slice(prefix.length) + next.search;
    }
    throw new OciError('TOO_LARGE', `tag list of ${n.name} has more than ${MAX_PAGES} pages`);
  }

  async function getReferrers(image: string, digest: string, o?: { artifactType?: string } & JobLimits): Promise<ReferrersResult> {
    const n = nameOf(image);
    const hex = parseSha256Digest(digest);
    const wanted = o?.artifactType;
    const keep = (ds: Descriptor[]): Descriptor[] => (wanted === undefined ? ds : ds.filter((d) => d.artifactType === wanted));
    let path = `referrers/${digest}${wanted === undefined ? '' : `?artifactType=${encodeURIComponent(wanted)}`}`;
    const collected: Descriptor[] = [];
    for (let page = 0; page < MAX_PAGES; page++) {
      // 404 means "no referrers API here" (distribution spec); 405 is what some older registries send instead.
      const { res, url } = await request(n, { path, accept: MEDIA_TYPES.ociIndex, passStatuses: page === 0 ? [404, 405] : [], limits: o });
      if (res.status === 404 || res.status === 405) {
        await discard(res);
        return { manifests: await referrersFromTag(image, hex, keep, o), via: 'tag-schema' };
      }
      const what = `referrers of ${n.name}@${digest}`;
      const index = parseJsonObject(await readLimited(res, maxManifest, what, o), what);
      // Registries say whether they applied the filter; when they did not, it is applied here.
      collected.push(...keep(descriptorsOf(index, what)));
      const next = nextLink(res, url);
      if (next === undefined) return { manifests: collected, via: 'api' };
      const prefix = `/v2/${n.repository}/`;
      if (!next.pathname.startsWith(prefix)) return { manifests: collected, via: 'api' };
      path = next.pathname.slice(prefix.length) + next.search;
    }
    throw new OciError('TOO_LARGE', `referrers of ${n.name}@${digest} have more than ${MAX_PAGES} pages`);
  }

  async function referrersFromTag(
    image: string,
    hex: string,
    keep: (ds: Descriptor[]) => Descriptor[],
    limits: JobLimits | undefined,
  ): Promise<Descriptor[]> {
    let index: FetchedManifest;
    try {
      index = await getManifest(image, `sha256-${hex}`, limits);
    } catch (e) {
      if (e instanceof OciError && e.code === 'NOT_FOUND') return [];
      throw e;
    }
    return keep(descriptorsOf(index.json, `referrers tag sha256-${hex}`));
  }

  return { getManifest, getBlob, listTags, getReferrers };
}
