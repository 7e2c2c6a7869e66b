// One authenticated GET against a registry's /v2/<repository>/ API: the cached token first, one answer to a 401's
// challenge (only the registry's own, never one a redirect led to), and each failure status turned into its OciError.
import { OciError, type JobLimits } from './errors.js';
import type { ImageName } from './reference.js';
import type { RegistryAuth } from './registry-auth.js';
import { discard, type FetchFollow } from './registry-http.js';

export interface RequestSpec {
  path: string;
  limits?: JobLimits | undefined;
  accept?: string;
  /** Extra statuses returned to the caller instead of being turned into errors. */
  passStatuses?: number[];
}

/** What a request needs from its client, built once per client. */
export interface RegistryConnection extends Pick<RegistryAuth, 'cachedAuthorization' | 'answerChallenge'> {
  baseUrl: (n: ImageName) => string;
  fetchFollow: FetchFollow;
}

export async function registryRequest(c: RegistryConnection, n: ImageName, spec: RequestSpec): Promise<{ res: Response; url: URL }> {
  const url = new URL(`${c.baseUrl(n)}/v2/${n.repository}/${spec.path}`);
  const headers: Record<string, string> = {};
  if (spec.accept !== undefined) headers['accept'] = spec.accept;
  const cached = c.cachedAuthorization(n);
  if (cached !== undefined) headers['authorization'] = cached;
  let out = await c.fetchFollow(url, headers, spec.limits);
  if (out.res.status === 401) {
    if (out.url.origin !== url.origin) {
      // A 401 from wherever a redirect led is that host's challenge, not the registry's: answering it would hand the
      // registry's credentials to a realm of its choosing.
      await discard(out.res);
      throw new OciError(
        'REGISTRY_UNAUTHORIZED',
        `${n.name}: GET ${spec.path.split('?')[0]}: authentication asked by ${out.url.origin} after a redirect is not answered`,
        {
          status: 401,
        },
      );
    }
    const authorization = await c.answerChallenge(n, out.res, spec.limits);
    await discard(out.res);
    out = await c.fetchFollow(url, { ...headers, authorization }, spec.limits);
  }
  const { res } = out;
  if (res.status >= 200 && res.status < 300) return out;
  if (spec.passStatuses?.includes(res.status)) return out;
  await discard(res);
  throw statusError(`${n.name}: GET ${spec.path.split('?')[0]}`, res.status);
}

/** Only 429 and 5xx are transient (worth a retry); every other status is the registry's answer. */
function statusError(where: string, status: number): OciError {
  if (status === 404) return new OciError('NOT_FOUND', `${where}: not found`, { status: 404 });
  if (status === 401) return new OciError('REGISTRY_UNAUTHORIZED', `${where}: unauthorized`, { status: 401 });
  if (status === 403) return new OciError('REGISTRY_FORBIDDEN', `${where}: forbidden`, { status: 403 });
  if (status === 429) return new OciError('REGISTRY_RATE_LIMITED', `${where}: rate limited`, { transient: true, status: 429 });
  if (status >= 500) return new OciError('REGISTRY_UNAVAILABLE', `${where}: registry answered ${status}`, { transient: true, status });
  return new OciError('REGISTRY_ERROR', `${where}: registry answered ${status}`, { status });
}
