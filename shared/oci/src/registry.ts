/**
 * A small read-only OCI distribution client on `fetch`: manifests and blobs by digest (the bytes are hashed and must
 * match the digest asked for), tags, and referrers (the OCI 1.1 API, falling back to the referrers tag schema when the
 * registry answers 404). Auth: anonymous, the bearer-token handshake announced in `WWW-Authenticate` (tokens cached
 * per scope), basic, or a configured bearer token.
 *
 * Failures are `OciError`s; `transient` ones (5xx, 429, network) are worth retrying, the others are answers.
 */
import { createHash } from 'node:crypto';
import { IMAGE_MATERIAL_TOO_LARGE, IMAGE_VERIFY_DEADLINE, OciError } from './errors.js';
import type { JobLimits } from './errors.js';
import { parseImageName, parseSha256Digest } from './reference.js';
import type { ImageName } from './reference.js';
import { parseWwwAuthenticate } from './www-authenticate.js';
import type { Challenge } from './www-authenticate.js';

export type RegistryCredential = { username: string; password: string } | { token: string };

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

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface FetchedManifest {
  /** sha256 of the bytes, as received. */
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: Record<string, unknown>;
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

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList].join(', ');
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_REDIRECTS = 5;
const MAX_PAGES = 50;
const MAX_TOKEN_RESPONSE = 64 * 1024;
// Refresh a little before the registry's own expiry so a token does not die between check and use.
const TOKEN_SKEW_MS = 10_000;
const BUILTIN_TOKEN_REALMS: Record<string, string[]> = { 'docker.io': ['https://auth.docker.io'] };

interface CachedToken {
  value: string;
  expiresAt: number;
}

interface RequestSpec {
  path: string;
  limits?: JobLimits | undefined;
  accept?: string;
  /** Extra statuses returned to the caller instead of being turned into errors. */
  passStatuses?: number[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function describeCause(e: unknown): string {
  if (e instanceof Error) {
    const c = (e as { cause?: unknown }).cause;
    const code = isObject(c) && typeof c['code'] === 'string' ? ` (${c['code']})` : '';
    return `${e.message}${code}`;
  }
  return String(e);
}

// A function, not an inline test: TypeScript would narrow `signal.aborted` across the await that changes it.
const aborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;

function deadlineError(what: string): OciError {
  return new OciError(IMAGE_VERIFY_DEADLINE, `${what}: the image job ran out of time`);
}

function budgetError(what: string, limits: JobLimits): OciError {
  return new OciError(IMAGE_MATERIAL_TOO_LARGE, `${what}: the image job's registry material is over its ${limits.budget?.limit ?? 0}-byte budget`);
}

async function readLimited(res: Response, max: number, what: string, limits?: JobLimits): Promise<Buffer> {
  const budget = limits?.budget;
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new OciError('TOO_LARGE', `${what} is ${declared} bytes, over the ${max}-byte limit`);
  }
  if (declared !== null && budget !== undefined && budget.used + Number(declared) > budget.limit) {
    await res.body?.cancel().catch(() => undefined);
    budget.used = budget.limit;
    throw budgetError(what, limits!);
  }
  if (res.body === null) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      // The DOM typings leave the chunk type open; fetch bodies are byte streams.
      const { done, value } = (await reader.read()) as { done: true; value?: undefined } | { done: false; value: Uint8Array };
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => undefined);
        throw new OciError('TOO_LARGE', `${what} is over the ${max}-byte limit`);
      }
      if (budget !== undefined) {
        // Charged as bytes arrive: a body without Content-Length cannot read past the budget either.
        budget.used += value.byteLength;
        if (budget.used > budget.limit) {
          await reader.cancel().catch(() => undefined);
          throw budgetError(what, limits!);
        }
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  } catch (e) {
    if (e instanceof OciError) throw e;
    if (aborted(limits?.signal)) throw deadlineError(`reading ${what}`);
    throw new OciError('REGISTRY_NETWORK', `reading ${what} failed: ${describeCause(e)}`, { transient: true, cause: e });
  }
  return Buffer.concat(chunks, total);
}

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
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

function nextLink(res: Response, current: URL): URL | undefined {
  const link = res.headers.get('link');
  if (link === null) return undefined;
  const m = /<([^>]*)>\s*;[^,]*rel="?next"?/i.exec(link);
  if (m === null) return undefined;
  let u: URL;
  try {
    u = new URL(m[1]!, current);
  } catch {
    return undefined;
  }
  // Pagination never leaves the registry (a Link header cannot send us, or our credentials, elsewhere).
  return u.origin === current.origin ? u : undefined;
}

export function createRegistryClient(opts: RegistryClientOptions = {}): RegistryClient {
  const doFetch = opts.fetch ?? fetch;
  const insecure = new Set((opts.insecureHosts ?? []).map((h) => h.toLowerCase()));
  const credentials = new Map(Object.entries(opts.credentials ?? {}).map(([h, c]) => [h.toLowerCase(), c]));
  const tokenRealms = new Map<string, Set<string>>();
  for (const [h, origins] of Object.entries({ ...BUILTIN_TOKEN_REALMS, ...opts.tokenRealms })) {
    const set = tokenRealms.get(h.toLowerCase()) ?? new Set<string>();
    for (const o of origins) set.add(new URL(o).origin);
    tokenRealms.set(h.toLowerCase(), set);
  }
  const maxManifest = opts.maxManifestBytes ?? 4 * 1024 * 1024;
  const maxBlob = opts.maxBlobBytes ?? 16 * 1024 * 1024;
  const now = opts.now ?? Date.now;
  const tokens = new Map<string, CachedToken>();
  /** Which token cache key last worked for a repository, so later requests can send it up front. */
  const repoToken = new Map<string, string>();
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
  const credentialFor = (n: ImageName): RegistryCredential | undefined => credentials.get(n.host) ?? credentials.get(n.apiHost);
  const baseUrl = (n: ImageName): string => `${isInsecure(n.apiHost) || isInsecure(n.host) ? 'http' : 'https'}://${n.apiHost}`;

  /** fetch with our own redirect handling: no downgrade to http, no Authorization sent to another origin. */
  async function fetchFollow(url: URL, headers: Record<string, string>, limits?: JobLimits): Promise<{ res: Response; url: URL }> {
    let current = url;
    let hdrs = headers;
    const signal = limits?.signal;
    for (let i = 0; i <= MAX_REDIRECTS; i++) {
      let res: Response;
      if (aborted(signal)) throw deadlineError(current.host);
      try {
        res = await doFetch(current, signal === undefined ? { headers: hdrs, redirect: 'manual' } : { headers: hdrs, redirect: 'manual', signal });
      } catch (e) {
        if (aborted(signal)) throw deadlineError(current.host);
        throw new OciError('REGISTRY_NETWORK', `${current.host}: ${describeCause(e)}`, { transient: true, cause: e });
      }
      if (res.status < 300 || res.status > 399 || res.status === 304) return { res, url: current };
      const location = res.headers.get('location');
      await res.body?.cancel().catch(() => undefined);
      if (location === null) throw new OciError('INVALID_RESPONSE', `${current.host} sent a redirect without a location`, { status: res.status });
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new OciError('INVALID_RESPONSE', `${current.host} sent an unparsable redirect`);
      }
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && isInsecure(next.host))) {
        throw new OciError('INSECURE_REDIRECT', `${current.host} redirected to a non-https location`);
      }
      if (next.origin !== current.origin) {
        // Blob downloads are commonly redirected to storage URLs that carry their own signature.
        const { authorization: _dropped, ...rest } = hdrs;
        hdrs = rest;
      }
      current = next;
    }
    throw new OciError('INVALID_RESPONSE', `too many redirects from ${url.host}`);
  }

  async function fetchToken(n: ImageName, ch: Challenge, key: string, limits: JobLimits | undefined): Promise<string> {
    const realm = ch.params['realm'];
    if (realm === undefined || realm === '') throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: bearer realm is not a URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isInsecure(url.host))) {
      // Credentials (and the tokens that stand for them) only travel over TLS.
      throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: bearer realm ${url.origin} is not https`);
    }
    if (ch.params['service'] !== undefined) url.searchParams.set('service', ch.params['service']);
    url.searchParams.set('scope', ch.params['scope'] ?? `repository:${n.repository}:pull`);
    const headers: Record<string, string> = { accept: 'application/json' };
    const cred = credentialFor(n);
    if (cred !== undefined && 'username' in cred) {
      // The realm is named by whoever answered the challenge: credentials go only to the registry's own origin or a
      // token service configured for it, never to a host the registry (or a redirect) merely points at.
      const own = new URL(baseUrl(n)).origin;
      if (url.origin !== own && !(tokenRealms.get(n.host)?.has(url.origin) ?? false)) {
        throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: bearer realm ${url.origin} is neither the registry nor a configured token service for it`);
      }
      headers['authorization'] = `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
    }
    const { res } = await fetchFollow(url, headers, limits);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => undefined);
      throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: token service refused (${res.status})`, { status: res.status });
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel().catch(() => undefined);
      throw new OciError('REGISTRY_UNAVAILABLE', `${n.host}: token service answered ${res.status}`, { transient: true, status: res.status });
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: token service answered ${res.status}`, { status: res.status });
    }
    const body = parseJsonObject(await readLimited(res, MAX_TOKEN_RESPONSE, 'token response', limits), 'token response');
    const token = typeof body['token'] === 'string' && body['token'] !== '' ? body['token'] : body['access_token'];
    if (typeof token !== 'string' || token === '') throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: token response has no token`);
    // The token spec: expires_in defaults to 60 seconds.
    const ttl = typeof body['expires_in'] === 'number' && body['expires_in'] > 0 ? body['expires_in'] : 60;
    tokens.set(key, { value: token, expiresAt: now() + ttl * 1000 - TOKEN_SKEW_MS });
    if (tokens.size > 500) tokens.clear();
    return token;
  }

  function cachedAuthorization(n: ImageName): string | undefined {
    const cred = credentialFor(n);
    if (cred !== undefined && 'token' in cred) return `Bearer ${cred.token}`;
    const key = repoToken.get(n.name);
    if (key !== undefined) {
      const t = tokens.get(key);
      if (t !== undefined && t.expiresAt > now()) return `Bearer ${t.value}`;
    }
    return undefined;
  }

  /** Answers the 401 challenge; returns the Authorization header to retry with, or throws. */
  async function answerChallenge(n: ImageName, res: Response, limits: JobLimits | undefined): Promise<string> {
    const cred = credentialFor(n);
    const header = res.headers.get('www-authenticate');
    const challenges = header === null ? [] : parseWwwAuthenticate(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (cred !== undefined && 'token' in cred) {
      // A configured token was sent and refused; exchanging it for another is not something we guess at.
      throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: the configured token was refused`, { status: 401 });
    }
    if (bearer !== undefined) {
      const key = `${n.apiHost}|${bearer.params['realm'] ?? ''}|${bearer.params['service'] ?? ''}|${bearer.params['scope'] ?? n.repository}`;
      const cached = tokens.get(key);
      const sent = repoToken.get(n.name) === key;
      const token = cached !== undefined && cached.expiresAt > now() && !sent ? cached.value : await fetchToken(n, bearer, key, limits);
      repoToken.set(n.name, key);
      return `Bearer ${token}`;
    }
    if (challenges.some((c) => c.scheme === 'basic') && cred !== undefined && 'username' in cred) {
      return `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
    }
    throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: authentication required${cred === undefined ? ' and no credentials are configured' : ''}`, {
      status: 401,
    });
  }

  async function request(n: ImageName, spec: RequestSpec): Promise<{ res: Response; url: URL }> {
    const url = new URL(`${baseUrl(n)}/v2/${n.repository}/${spec.path}`);
    const headers: Record<string, string> = {};
    if (spec.accept !== undefined) headers['accept'] = spec.accept;
    const cached = cachedAuthorization(n);
    if (cached !== undefined) headers['authorization'] = cached;
    let out = await fetchFollow(url, headers, spec.limits);
    if (out.res.status === 401) {
      if (out.url.origin !== url.origin) {
        // A 401 from wherever a redirect led is that host's challenge, not the registry's: answering it would hand the
        // registry's credentials to a realm of its choosing.
        await out.res.body?.cancel().catch(() => undefined);
        throw new OciError('REGISTRY_UNAUTHORIZED', `${n.name}: GET ${spec.path.split('?')[0]}: authentication asked by ${out.url.origin} after a redirect is not answered`, {
          status: 401,
        });
      }
      const authorization = await answerChallenge(n, out.res, spec.limits);
      await out.res.body?.cancel().catch(() => undefined);
      out = await fetchFollow(url, { ...headers, authorization }, spec.limits);
    }
    const { res } = out;
    if (res.status >= 200 && res.status < 300) return out;
    if (spec.passStatuses?.includes(res.status)) return out;
    await res.body?.cancel().catch(() => undefined);
    const where = `${n.name}: GET ${spec.path.split('?')[0]}`;
    if (res.status === 404) throw new OciError('NOT_FOUND', `${where}: not found`, { status: 404 });
    if (res.status === 401) throw new OciError('REGISTRY_UNAUTHORIZED', `${where}: unauthorized`, { status: 401 });
    if (res.status === 403) throw new OciError('REGISTRY_FORBIDDEN', `${where}: forbidden`, { status: 403 });
    if (res.status === 429) throw new OciError('REGISTRY_RATE_LIMITED', `${where}: rate limited`, { transient: true, status: 429 });
    if (res.status >= 500) throw new OciError('REGISTRY_UNAVAILABLE', `${where}: registry answered ${res.status}`, { transient: true, status: res.status });
    throw new OciError('REGISTRY_ERROR', `${where}: registry answered ${res.status}`, { status: res.status });
  }

  async function getManifest(image: string, reference: string, limits?: JobLimits): Promise<FetchedManifest> {
    const n = nameOf(image);
    const byDigest = reference.includes(':');
    const hex = byDigest ? parseSha256Digest(reference) : undefined;
    if (!byDigest && !TAG.test(reference)) throw new OciError('INVALID_REFERENCE', `invalid tag ${JSON.stringify(reference.slice(0, 200))}`);
    const { res } = await request(n, { path: `manifests/${reference}`, accept: MANIFEST_ACCEPT, limits });
    const bytes = await readLimited(res, maxManifest, `manifest ${n.name}@${reference}`, limits);
    const actual = sha256Hex(bytes);
    if (hex !== undefined && actual !== hex) {
      throw new OciError('DIGEST_MISMATCH', `manifest ${n.name}@${reference}: the registry returned bytes with digest sha256:${actual}`);
    }
    const json = parseJsonObject(bytes, `manifest ${n.name}@${reference}`);
    const declared = typeof json['mediaType'] === 'string' ? json['mediaType'] : undefined;
    const header = res.headers.get('content-type')?.split(';')[0]?.trim();
    return { digest: `sha256:${actual}`, mediaType: declared ?? header ?? '', bytes, json };
  }

  async function getBlob(image: string, digest: string, o?: { maxBytes?: number } & JobLimits): Promise<Buffer> {
    const n = nameOf(image);
    const hex = parseSha256Digest(digest);
    const { res } = await request(n, { path: `blobs/${digest}`, limits: o });
    const bytes = await readLimited(res, o?.maxBytes ?? maxBlob, `blob ${n.name}@${digest}`, o);
    const actual = sha256Hex(bytes);
    if (actual !== hex) throw new OciError('DIGEST_MISMATCH', `blob ${n.name}@${digest}: the registry returned bytes with digest sha256:${actual}`);
    return bytes;
  }

  async function listTags(image: string): Promise<string[]> {
    const n = nameOf(image);
    const out: string[] = [];
    let path = 'tags/list?n=1000';
    for (let page = 0; page < MAX_PAGES; page++) {
      const { res, url } = await request(n, { path, accept: 'application/json' });
      const body = parseJsonObject(await readLimited(res, maxManifest, `tag list of ${n.name}`), `tag list of ${n.name}`);
      const tags = body['tags'];
      if (tags !== null && tags !== undefined) {
        if (!Array.isArray(tags)) throw new OciError('INVALID_RESPONSE', `tag list of ${n.name} is malformed`);
        for (const t of tags) if (typeof t === 'string') out.push(t);
      }
      const next = nextLink(res, url);
      if (next === undefined) return out;
      const prefix = `/v2/${n.repository}/`;
      if (!next.pathname.startsWith(prefix)) return out;
      path = next.pathname.slice(prefix.length) + next.search;
    }
    throw new OciError('TOO_LARGE', `tag list of ${n.name} has more than ${MAX_PAGES} pages`);
  }

  function descriptorsOf(index: Record<string, unknown>, what: string): Descriptor[] {
    const list = index['manifests'];
    if (!Array.isArray(list)) throw new OciError('INVALID_RESPONSE', `${what} is not an image index`);
    const out: Descriptor[] = [];
    for (const m of list) {
      const d = parseDescriptor(m);
      if (d !== undefined) out.push(d);
    }
    return out;
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
        await res.body?.cancel().catch(() => undefined);
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

  async function referrersFromTag(image: string, hex: string, keep: (ds: Descriptor[]) => Descriptor[], limits: JobLimits | undefined): Promise<Descriptor[]> {
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
