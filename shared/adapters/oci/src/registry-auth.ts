/**
 * Registry authentication: configured credentials (basic or a bearer token), and the bearer-token handshake announced
 * in `WWW-Authenticate`, with tokens cached per scope and remembered per repository so later requests send them
 * up front. Credentials only travel over TLS and only to the registry or a token service configured for it.
 */
import { OciError, type JobLimits } from './errors.js';
import { parseJsonObject } from './oci-documents.js';
import type { ImageName } from './reference.js';
import { discard, readLimited, type FetchFollow } from './registry-http.js';
import { parseWwwAuthenticate, type Challenge } from './www-authenticate.js';

export type RegistryCredential = { username: string; password: string } | { token: string };

const MAX_TOKEN_RESPONSE = 64 * 1024;
// Refresh a little before the registry's own expiry so a token does not die between check and use.
const TOKEN_SKEW_MS = 10_000;
const BUILTIN_TOKEN_REALMS: Record<string, string[]> = { 'docker.io': ['https://auth.docker.io'] };

interface CachedToken {
  value: string;
  expiresAt: number;
}

export interface RegistryAuthOptions {
  credentials?: Record<string, RegistryCredential> | undefined;
  tokenRealms?: Record<string, string[]> | undefined;
  now: () => number;
  fetchFollow: FetchFollow;
  isInsecure: (host: string) => boolean;
  /** `http(s)://<apiHost>` of an image's registry. */
  baseUrl: (n: ImageName) => string;
}

export interface RegistryAuth {
  /** The Authorization to send up front (a configured token, or the unexpired token that last worked here). */
  cachedAuthorization: (n: ImageName) => string | undefined;
  /** Answers the 401 challenge; returns the Authorization header to retry with, or throws. */
  answerChallenge: (n: ImageName, res: Response, limits: JobLimits | undefined) => Promise<string>;
}

export function createRegistryAuth(opts: RegistryAuthOptions): RegistryAuth {
  const { now, fetchFollow, isInsecure, baseUrl } = opts;
  const credentials = new Map(Object.entries(opts.credentials ?? {}).map(([h, c]) => [h.toLowerCase(), c]));
  const tokenRealms = new Map<string, Set<string>>();
  for (const [h, origins] of Object.entries({ ...BUILTIN_TOKEN_REALMS, ...opts.tokenRealms })) {
    const set = tokenRealms.get(h.toLowerCase()) ?? new Set<string>();
    for (const o of origins) set.add(new URL(o).origin);
    tokenRealms.set(h.toLowerCase(), set);
  }
  const tokens = new Map<string, CachedToken>();
  /** Which token cache key last worked for a repository, so later requests can send it up front. */
  const repoToken = new Map<string, string>();
  const credentialFor = (n: ImageName): RegistryCredential | undefined => credentials.get(n.host) ?? credentials.get(n.apiHost);

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
        throw new OciError(
          'REGISTRY_UNAUTHORIZED',
          `${n.host}: bearer realm ${url.origin} is neither the registry nor a configured token service for it`,
        );
      }
      headers['authorization'] = `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
    }
    const { res } = await fetchFollow(url, headers, limits);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      throw new OciError('REGISTRY_UNAUTHORIZED', `${n.host}: token service refused (${res.status})`, { status: res.status });
    }
    if (res.status === 429 || res.status >= 500) {
      await discard(res);
      throw new OciError('REGISTRY_UNAVAILABLE', `${n.host}: token service answered ${res.status}`, {
        transient: true,
        status: res.status,
      });
    }
    if (res.status !== 200) {
      await discard(res);
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
    throw new OciError(
      'REGISTRY_UNAUTHORIZED',
      `${n.host}: authentication required${cred === undefined ? ' and no credentials are configured' : ''}`,
      {
        status: 401,
      },
    );
  }

  return { cachedAuthorization, answerChallenge };
}
