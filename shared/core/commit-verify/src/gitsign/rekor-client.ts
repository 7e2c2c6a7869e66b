/**
 * A minimal Rekor (v1 REST API) search client for gitsign "online" signatures, whose log entry is not embedded in the
 * commit. Everything it returns is untrusted input: the verifier checks the body, the signed entry timestamp and the
 * inclusion proof itself. Results are cached (entries are immutable once logged), so re-verifying a commit, or many
 * workers verifying the same push, costs one round trip.
 */
import { createHash } from 'node:crypto';
import { BoundedCache } from '@gitops-gate/bundle-verify';

/** One entry as Rekor's `GET /api/v1/log/entries/{uuid}` returns it (LogEntryAnon), plus its uuid. */
export interface RekorLogEntry {
  uuid: string;
  /** base64 of the canonicalized entry body. */
  body: string;
  integratedTime: number;
  /** hex SHA-256 of the log's public key. */
  logID: string;
  logIndex: number;
  verification?: {
    /** base64 signed entry timestamp. */
    signedEntryTimestamp?: string;
    inclusionProof?: {
      logIndex: number;
      /** hex */
      rootHash: string;
      treeSize: number;
      /** hex */
      hashes: string[];
      checkpoint?: string;
    };
  };
}

/** A search over Rekor's index; with both fields set, only entries matching both are wanted. */
export interface RekorSearchQuery {
  /** Artifact digest as Rekor indexes it: `sha256:<hex>`. */
  hash?: string;
  /** PEM of the signing certificate (or key) whose entries are wanted. */
  publicKeyPem?: string;
}

export interface RekorLookup {
  /** Entries Rekor lists for the query (possibly none). Throws RekorLookupError when Rekor cannot be asked. */
  findEntries(query: RekorSearchQuery): Promise<RekorLogEntry[]>;
}

/**
 * `REKOR_UNAVAILABLE` (transient: network error, timeout, HTTP 5xx, 408 or 429) means "ask again later"; anything else
 * (`REKOR_LOOKUP_FAILED`: a 4xx, a response that is not what the API specifies, a bad query) will not change by
 * asking again.
 */
export class RekorLookupError extends Error {
  readonly code: 'REKOR_UNAVAILABLE' | 'REKOR_LOOKUP_FAILED';
  readonly transient: boolean;
  constructor(message: string, transient = false) {
    super(message);
    this.name = 'RekorLookupError';
    this.transient = transient;
    this.code = transient ? 'REKOR_UNAVAILABLE' : 'REKOR_LOOKUP_FAILED';
  }
}

/** HTTP statuses after which the same request may succeed: server trouble, rate limits, timeouts. */
function transientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

export interface RekorClientOptions {
  /** Base URL, e.g. https://rekor.sigstore.dev */
  url: string;
  fetch?: typeof fetch;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** At most this many entries are fetched per query (the index may list more); default 16. */
  maxEntries?: number;
  /** Cached queries; default 512. */
  cacheSize?: number;
}

const UUID_RE = /^(?:[0-9a-f]{16})?[0-9a-f]{64}$/;
const HASH_RE = /^sha256:[0-9a-f]{64}$/;

export function createRekorClient(options: RekorClientOptions): RekorLookup {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new RekorLookupError(`invalid Rekor URL: ${options.url}`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new RekorLookupError(`unsupported Rekor URL scheme: ${base.protocol}`);
  const baseUrl = base.href.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxEntries = options.maxEntries ?? 16;
  const cache = new BoundedCache<RekorLogEntry[]>(options.cacheSize ?? 512);
  const inFlight = new Map<string, Promise<RekorLogEntry[]>>();

  async function request(path: string, init?: RequestInit): Promise<unknown> {
    let res: Response;
    try {
      res = await doFetch(`${baseUrl}${path}`, {
        ...init,
        headers: { accept: 'application/json', ...(init?.body ? { 'content-type': 'application/json' } : {}) },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new RekorLookupError(`Rekor at ${baseUrl} is unreachable: ${(err as Error).message}`, true);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new RekorLookupError(`Rekor ${path} answered HTTP ${res.status}`, transientStatus(res.status));
    }
    try {
      return await res.json();
    } catch (err) {
      // A body cut off by the network is transient; a complete body that is not JSON is what this server serves.
      throw new RekorLookupError(`Rekor ${path} returned invalid JSON: ${(err as Error).message}`, !(err instanceof SyntaxError));
    }
  }

  async function lookup(query: RekorSearchQuery): Promise<RekorLogEntry[]> {
    const search: Record<string, unknown> = {};
    if (query.hash !== undefined) search['hash'] = query.hash;
    if (query.publicKeyPem !== undefined) {
      search['publicKey'] = { format: 'x509', content: Buffer.from(query.publicKeyPem, 'utf8').toString('base64') };
    }
    if (query.hash !== undefined && query.publicKeyPem !== undefined) search['operator'] = 'and';
    const uuids = await request('/api/v1/index/retrieve', { method: 'POST', body: JSON.stringify(search) });
    if (!Array.isArray(uuids) || !uuids.every((u) => typeof u === 'string' && UUID_RE.test(u))) {
      throw new RekorLookupError('Rekor index returned something other than a list of entry UUIDs');
    }
    const entries: RekorLogEntry[] = [];
    for (const uuid of [...new Set(uuids as string[])].slice(0, maxEntries)) {
      const res = await request(`/api/v1/log/entries/${uuid}`);
      entries.push(parseEntryResponse(uuid, res));
    }
    return entries;
  }

  return {
    async findEntries(query: RekorSearchQuery): Promise<RekorLogEntry[]> {
      if (query.hash === undefined && query.publicKeyPem === undefined) throw new RekorLookupError('empty Rekor query');
      if (query.hash !== undefined && !HASH_RE.test(query.hash)) throw new RekorLookupError('Rekor hash query must be sha256:<hex>');
      const key = `${query.hash ?? ''}|${query.publicKeyPem === undefined ? '' : createHash('sha256').update(query.publicKeyPem).digest('hex')}`;
      const hit = cache.get(key);
      if (hit) return hit;
      const pending = inFlight.get(key);
      if (pending) return pending;
      const p = lookup(query)
        .then((entries) => {
          // Empty answers are not cached: an entry may still be on its way into the index.
          if (entries.length > 0) cache.set(key, entries);
          return entries;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, p);
      return p;
    },
  };
}

function parseEntryResponse(uuid: string, res: unknown): RekorLogEntry {
  if (!isObject(res)) throw new RekorLookupError(`Rekor entry ${uuid} response is not an object`);
  // The response is keyed by the entry's full id, which may carry a tree-id prefix the index listing lacked.
  const keys = Object.keys(res);
  const key = keys.find((k) => k === uuid || k.endsWith(uuid) || uuid.endsWith(k));
  if (keys.length !== 1 || key === undefined) throw new RekorLookupError(`Rekor entry response does not hold entry ${uuid}`);
  const e = res[key];
  if (!isObject(e)) throw new RekorLookupError(`Rekor entry ${uuid} is not an object`);
  const { body, integratedTime, logID, logIndex, verification } = e;
  if (typeof body !== 'string' || !isCount(integratedTime) || typeof logID !== 'string' || !isCount(logIndex)) {
    throw new RekorLookupError(`Rekor entry ${uuid} lacks body, integratedTime, logID or logIndex`);
  }
  const out: RekorLogEntry = { uuid: key, body, integratedTime, logID, logIndex };
  if (isObject(verification)) {
    const v: NonNullable<RekorLogEntry['verification']> = {};
    if (typeof verification['signedEntryTimestamp'] === 'string') v.signedEntryTimestamp = verification['signedEntryTimestamp'];
    const p = verification['inclusionProof'];
    if (isObject(p)) {
      const { logIndex: pIndex, rootHash, treeSize, hashes, checkpoint } = p;
      if (
        !isCount(pIndex) ||
        typeof rootHash !== 'string' ||
        !isCount(treeSize) ||
        !Array.isArray(hashes) ||
        !hashes.every((h) => typeof h === 'string')
      ) {
        throw new RekorLookupError(`Rekor entry ${uuid} has a malformed inclusion proof`);
      }
      v.inclusionProof = { logIndex: pIndex, rootHash, treeSize, hashes: hashes };
      if (typeof checkpoint === 'string') v.inclusionProof.checkpoint = checkpoint;
    }
    out.verification = v;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
