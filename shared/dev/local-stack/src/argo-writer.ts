/**
 * A background "Argo CD" for the e2e and bench stacks: it writes the same Application objects the gate pins, the way
 * Argo CD's application controller and API server do. Argo CD's Application CRD has no status subresource, so every
 * one of these writes bumps the object's resourceVersion and races the gate's read → decide → patch.
 *
 * Per Application, independently:
 * - a *refresh* every `intervalMs` (random in [min, max]; Argo CD: 120–180 s, the default here): the controller's
 *   status write, a merge patch of `status` (reconciledAt, sync, health) without a resourceVersion — unconditional,
 *   as Argo CD's persistAppStatus sends it;
 * - with probability `syncProbability` the refresh is a *sync*: `operation` set, then `burst` status writes
 *   `burstGapMs` apart (operationState Running, resources progressing), then Succeeded and `operation` removed;
 * - with probability `putProbability` a write is instead a whole-object PUT of what was read (an `argocd app set`, a
 *   UI edit): GET, wait `putDelayMs`, PUT with the resourceVersion read; 409 → read again (as client-go's
 *   RetryOnConflict). A PUT that skipped the resourceVersion would be the way a pin gets lost; the API server's
 *   refusal of a stale one is what the e2e test checks.
 *
 * It never writes `spec.source(s)` or gitops-gate annotations: it only echoes what it read. It speaks HTTP over one
 * keep-alive agent, as client-go does: a TLS handshake per request (what @kubernetes/client-node does) would make the
 * writer, not the API traffic, the load on a benchmark machine.
 */
import { StackError } from './redis.js';
import { Agent, request, type RequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';

export interface ArgoWriterOptions {
  /** kubeconfig file of the API server holding the Applications. */
  kubeconfig: string;
  namespace: string;
  /** Applications to write; default: every Application in the namespace when the writer starts. */
  names?: string[];
  /** Time between one Application's refreshes, ms, uniformly random in [min, max]. Default Argo CD's 120–180 s. */
  intervalMs?: [number, number];
  /** Share of refreshes that are a sync (a burst of writes). Default 0.1. */
  syncProbability?: number;
  /** Writes in a sync's burst and the gap between them. Defaults 4 and 500 ms. */
  burst?: number;
  burstGapMs?: number;
  /** Share of writes that are a whole-object PUT instead of a status merge patch. Default 0.05. */
  putProbability?: number;
  /** Time between a PUT's GET and its PUT (the window a stale write would need), ms. Default 5. */
  putDelayMs?: number;
  /** Random source in [0, 1), for repeatable runs. */
  random?: () => number;
}

export interface ArgoWriterStats {
  statusPatches: number;
  puts: number;
  /** PUTs the API server refused with 409 because the object (e.g. a pin) had moved since the GET. */
  putConflicts: number;
  syncs: number;
  /** Writes that failed otherwise (the Application was deleted, the API server was away). */
  errors: number;
  /** The last of those, for the report. */
  lastError?: string;
}

export interface ArgoWriter {
  stats(): ArgoWriterStats;
  /** Stops every loop and waits for writes in flight. */
  stop(): Promise<void>;
}

interface AppObject {
  metadata: { name: string; resourceVersion?: string };
  spec?: { source?: { targetRevision?: string }; sources?: { targetRevision?: string }[] };
  status?: Record<string, unknown>;
  operation?: unknown;
  [key: string]: unknown;
}

const GROUP = 'argoproj.io';
const VERSION = 'v1alpha1';
const PLURAL = 'applications';
/** What an automated sync's `operation` looks like (Argo CD syncs to the Application's own targetRevision). */
const SYNC_OPERATION = { sync: {}, initiatedBy: { automated: true } };

class WriterHttpError extends StackError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('ARGO_WRITER_HTTP', message);
  }
}

export async function startArgoWriter(opts: ArgoWriterOptions): Promise<ArgoWriter> {
  const [min, max] = opts.intervalMs ?? [120_000, 180_000];
  if (!(min > 0 && max >= min))
    throw new StackError('ARGO_WRITER_INVALID', `argo writer: intervalMs must be [min, max] with 0 < min <= max, got [${min}, ${max}]`);
  const random = opts.random ?? Math.random;
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfig);
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new StackError('ARGO_WRITER_INVALID', `argo writer: no cluster server in ${opts.kubeconfig}`);
  const tls: RequestOptions = {};
  await kc.applyToHTTPSOptions(tls);
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 8,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: tls.rejectUnauthorized,
  });
  const ns = opts.namespace;
  const base = `${server.replace(/\/$/, '')}/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(ns)}/${PLURAL}`;

  /** One request; resolves to [status, parsed body]. */
  function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<[number, unknown]> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        `${base}${path}`,
        {
          method,
          agent,
          headers: {
            ...tls.headers,
            accept: 'application/json',
            ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve([res.statusCode ?? 0, text ? JSON.parse(text) : undefined]);
            } catch {
              resolve([res.statusCode ?? 0, text]);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }
  async function ok(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown> {
    const [status, out] = await call(method, path, body, contentType);
    if (status >= 200 && status < 300) return out;
    throw new WriterHttpError(status, `${method} ${path}: HTTP ${status}: ${JSON.stringify(out).slice(0, 300)}`);
  }
  const names = opts.names ?? (((await ok('GET', '')) as { items?: AppObject[] }).items ?? []).map((a) => a.metadata.name);
  const stats: ArgoWriterStats = { statusPatches: 0, puts: 0, putConflicts: 0, syncs: 0, errors: 0 };
  const abort = new AbortController();
  const stopped = () => abort.signal.aborted;

  const get = async (name: string) => (await ok('GET', `/${encodeURIComponent(name)}`)) as AppObject;
  const revisionOf = (app: AppObject) =>
    app.spec?.source?.targetRevision ?? app.spec?.sources?.map((s) => s.targetRevision ?? '').join(',') ?? '';
  const statusFor = (app: AppObject, phase: 'Refresh' | 'Running' | 'Succeeded') => ({
    reconciledAt: new Date().toISOString(),
    sync: { status: phase === 'Running' ? 'OutOfSync' : 'Synced', revision: revisionOf(app) },
    health: { status: phase === 'Running' ? 'Progressing' : 'Healthy' },
    ...(phase === 'Refresh'
      ? {}
      : {
          operationState: {
            operation: SYNC_OPERATION,
            phase,
            startedAt: new Date().toISOString(),
            syncResult: { revision: revisionOf(app) },
          },
        }),
  });

  /** One write: usually the controller's unconditional status patch, sometimes a whole-object PUT of what was read. */
  async function write(name: string, phase: 'Refresh' | 'Running' | 'Succeeded', operation?: unknown): Promise<void> {
    try {
      if (random() < (opts.putProbability ?? 0.05)) {
        for (let attempt = 0; attempt < 5 && !stopped(); attempt++) {
          const app = await get(name);
          await sleep(opts.putDelayMs ?? 5);
          const body: AppObject = { ...app, status: { ...app.status, ...statusFor(app, phase) } };
          if (operation === null) delete body.operation;
          else if (operation !== undefined) body.operation = operation;
          try {
            await ok('PUT', `/${encodeURIComponent(name)}`, body);
            stats.puts += 1;
            return;
          } catch (err) {
            if (!(err instanceof WriterHttpError && err.status === 409)) throw err;
            stats.putConflicts += 1;
          }
        }
        return;
      }
      const app = await get(name);
      const body: Record<string, unknown> = { status: statusFor(app, phase) };
      if (operation !== undefined) body.operation = operation;
      await ok('PATCH', `/${encodeURIComponent(name)}`, body, 'application/merge-patch+json');
      stats.statusPatches += 1;
    } catch (err) {
      if (stopped()) return;
      stats.errors += 1;
      stats.lastError = (err as Error).message;
    }
  }

  async function loop(name: string): Promise<void> {
    // Spread the first refreshes over one interval, as a controller that has been running a while would.
    await sleep(random() * max, undefined, { signal: abort.signal }).catch(() => undefined);
    while (!stopped()) {
      if (random() < (opts.syncProbability ?? 0.1)) {
        stats.syncs += 1;
        await write(name, 'Running', SYNC_OPERATION);
        for (let i = 0; i < (opts.burst ?? 4) && !stopped(); i++) {
          await sleep(opts.burstGapMs ?? 500, undefined, { signal: abort.signal }).catch(() => undefined);
          await write(name, 'Running');
        }
        await write(name, 'Succeeded', null);
      } else {
        await write(name, 'Refresh');
      }
      await sleep(min + random() * (max - min), undefined, { signal: abort.signal }).catch(() => undefined);
    }
  }

  const loops = names.map((n) => loop(n));
  return {
    stats: () => ({ ...stats }),
    async stop() {
      abort.abort();
      await Promise.all(loops);
      agent.destroy();
    },
  };
}
