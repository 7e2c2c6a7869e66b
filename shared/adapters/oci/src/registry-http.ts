/**
 * The HTTP layer of the registry client: fetch with our own redirect policy, bodies read under a size cap, the job's
 * byte budget and deadline, and pagination links. Knows nothing of OCI documents or auth.
 */
import { createHash } from 'node:crypto';
import { IMAGE_MATERIAL_TOO_LARGE, IMAGE_VERIFY_DEADLINE, OciError, type JobLimits } from './errors.js';
import { isObject } from './oci-documents.js';

const MAX_REDIRECTS = 5;

export function sha256Hex(b: Uint8Array): string {
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

export function deadlineError(what: string): OciError {
  return new OciError(IMAGE_VERIFY_DEADLINE, `${what}: the image job ran out of time`);
}

function budgetError(what: string, limits: JobLimits): OciError {
  return new OciError(
    IMAGE_MATERIAL_TOO_LARGE,
    `${what}: the image job's registry material is over its ${limits.budget?.limit ?? 0}-byte budget`,
  );
}

/** The body, at most `max` bytes (TOO_LARGE beyond) and charged to the job's budget as it arrives. */
export async function readLimited(res: Response, max: number, what: string, limits?: JobLimits): Promise<Buffer> {
  const budget = limits?.budget;
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > max) {
    await discard(res);
    throw new OciError('TOO_LARGE', `${what} is ${declared} bytes, over the ${max}-byte limit`);
  }
  if (declared !== null && budget !== undefined && budget.used + Number(declared) > budget.limit) {
    await discard(res);
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

/** The same-origin `rel=next` page of a paginated answer, if any. */
export function nextLink(res: Response, current: URL): URL | undefined {
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

export type FetchFollow = (url: URL, headers: Record<string, string>, limits?: JobLimits) => Promise<{ res: Response; url: URL }>;

/** Drops an answer's body we do not read (frees the connection). */
export async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** fetch with our own redirect handling: no downgrade to http, no Authorization sent to another origin. */
export function createFetchFollow(doFetch: typeof fetch, isInsecure: (host: string) => boolean): FetchFollow {
  return async function fetchFollow(url, headers, limits) {
    let current = url;
    let hdrs = headers;
    const signal = limits?.signal;
    for (let i = 0; i <= MAX_REDIRECTS; i++) {
      let res: Response;
      if (aborted(signal)) throw deadlineError(current.host);
      try {
        res = await doFetch(
          current,
          signal === undefined ? { headers: hdrs, redirect: 'manual' } : { headers: hdrs, redirect: 'manual', signal },
        );
      } catch (e) {
        if (aborted(signal)) throw deadlineError(current.host);
        throw new OciError('REGISTRY_NETWORK', `${current.host}: ${describeCause(e)}`, { transient: true, cause: e });
      }
      if (res.status < 300 || res.status > 399 || res.status === 304) return { res, url: current };
      const location = res.headers.get('location');
      await discard(res);
      if (location === null)
        throw new OciError('INVALID_RESPONSE', `${current.host} sent a redirect without a location`, { status: res.status });
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
  };
}
