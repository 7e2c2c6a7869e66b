/**
 * The sandbox Kubernetes API server: one object store behind the apiserver's REST surface (discovery, CRUD, patch,
 * watch, tables), served over HTTP and HTTPS on one port. This file wires the pieces — state (state.ts), routing
 * (routing.ts), the object lifecycle (lifecycle.ts, seed.ts), read and write verbs (read.ts, write.ts), answers
 * (respond.ts) and the listener (listener.ts) — and hands tests the operator controls (faults, denials, kinds).
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AGGREGATED_V2,
  AGGREGATED_V2BETA1,
  aggregatedDiscovery,
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  openApiV3,
  openApiV3Index,
  SERVER_VERSION,
} from './discovery.js';
import { SandboxError } from './errors.js';
import { parseAccept } from './http-util.js';
import { argoApplicationKind, namespaceKind } from './kinds.js';
import { renderKubeconfig } from './kubeconfig.js';
import { listenDualProtocol } from './listener.js';
import { handleGet, handleList, handleWatch, watchExpired } from './read.js';
import { send, sendStatus, type Ctx } from './respond.js';
import { checkDeny, OPEN_PATHS, route, takeFault, verbOf } from './routing.js';
import { seedObjects } from './seed.js';
import type { SandboxState } from './state.js';
import { faultStatus, methodNotAllowed, pathNotFound, StatusError, unauthorized, unknownError } from './status.js';
import { createStore } from './store.js';
import type { KubeconfigOptions, ResourceKind, SandboxApiServer, SandboxOptions } from './types.js';
import { handleCreate, handleDelete, handleDeleteCollection, handlePatch, handleUpdate } from './write.js';

export { SandboxError } from './errors.js';

/** A real apiserver's watch behaviour: ~75 s of resume history, every watch ended after a random 30–60 min. */
export const PRODUCTION_WATCHES: Pick<SandboxOptions, 'watchHistoryMs' | 'watchTimeout'> = {
  watchHistoryMs: 75_000,
  watchTimeout: { minMs: 30 * 60_000, maxMs: 60 * 60_000 },
};

const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'argocd'];

function registerKind(kinds: ResourceKind[], k: ResourceKind): void {
  for (const f of ['version', 'kind', 'plural', 'singular'] as const) {
    if (typeof k[f] !== 'string' || k[f] === '') throw new SandboxError('INVALID_KIND', `ResourceKind.${f} is required`);
  }
  if (k.plural !== k.plural.toLowerCase()) throw new SandboxError('INVALID_KIND', 'ResourceKind.plural must be lower case');
  const i = kinds.findIndex((x) => x.group === k.group && x.version === k.version && x.plural === k.plural);
  if (i >= 0) kinds[i] = k;
  else kinds.push(k);
}

function createState(opts: SandboxOptions): SandboxState {
  if (opts.watchTimeout && !(opts.watchTimeout.minMs > 0 && opts.watchTimeout.maxMs >= opts.watchTimeout.minMs)) {
    throw new SandboxError('INVALID_WATCH_TIMEOUT', 'watchTimeout needs 0 < minMs <= maxMs');
  }
  const s: SandboxState = {
    store: createStore({
      watchHistory: opts.watchHistory ?? 1000,
      ...(opts.watchHistoryMs !== undefined ? { watchHistoryMs: opts.watchHistoryMs } : {}),
      startRv: 1000,
    }),
    kinds: [],
    faults: [],
    denies: [],
    log: [],
    openWatches: new Set(),
    userName: opts.userName ?? 'system:serviceaccount:argocd:gitops-gate',
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 60_000,
    watchTimeout: opts.watchTimeout,
    url: '',
  };
  registerKind(s.kinds, namespaceKind);
  for (const k of opts.kinds ?? [argoApplicationKind]) registerKind(s.kinds, k);
  seedObjects(s, opts.namespaces ?? DEFAULT_NAMESPACES, opts.seed ?? []);
  return s;
}

export async function createSandboxApiServer(opts: SandboxOptions = {}): Promise<SandboxApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const s = createState(opts);
  const listener = await listenDualProtocol({ host, port: opts.port ?? 0, tls: opts.tls !== false }, (req, res) => {
    void handle(s, token, req, res);
  });
  s.url = listener.url;
  const kubeconfig = (o: KubeconfigOptions = {}) =>
    renderKubeconfig({
      server: o.scheme === 'http' || !listener.httpsUrl ? listener.url : listener.httpsUrl,
      token,
      ...(o.scheme !== 'http' && listener.caPem ? { caPem: listener.caPem } : {}),
      ...(o.context ? { context: o.context } : {}),
      ...(o.namespace ? { namespace: o.namespace } : {}),
    });

  let closed: Promise<void> | undefined;
  return {
    url: listener.url,
    httpsUrl: listener.httpsUrl,
    caPem: listener.caPem,
    token,
    kubeconfigYaml: kubeconfig,
    async writeKubeconfig(path, o = {}) {
      await writeFile(path, kubeconfig(o), { mode: 0o600 });
    },
    registerKind: (k) => registerKind(s.kinds, k),
    injectFault(f) {
      if (!Number.isInteger(f.status) || f.status < 100 || f.status > 599)
        throw new SandboxError('INVALID_FAULT', `fault status ${f.status} is not an HTTP status`);
      s.faults.push({ ...f, remaining: f.count ?? 1 });
    },
    deny(rule) {
      s.denies.push({ ...rule });
    },
    clearFaults() {
      s.faults.length = 0;
      s.denies.length = 0;
    },
    requests: () => s.log.map((e) => ({ ...e })),
    close() {
      closed ??= (async () => {
        for (const stop of [...s.openWatches]) stop();
        await listener.close();
      })();
      return closed;
    },
  };
}

async function handle(s: SandboxState, token: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const u = new URL(req.url ?? '/', 'http://sandbox.invalid');
  const method = (req.method ?? 'GET').toUpperCase();
  let recorded = false;
  const ctx: Ctx = {
    req,
    res,
    method,
    path: u.pathname,
    query: u.searchParams,
    warnings: [],
    record(status) {
      if (recorded) return;
      recorded = true;
      s.log.push({ method, path: u.pathname, query: u.search.replace(/^\?/, ''), status });
    },
  };
  try {
    const auth = req.headers.authorization;
    const open = OPEN_PATHS.some((p) => u.pathname === p || u.pathname.startsWith(`${p}/`));
    if (auth !== undefined ? auth !== `Bearer ${token}` : !open) throw unauthorized();
    await dispatch(s, ctx);
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      ctx.record(res.statusCode);
      return;
    }
    if (err instanceof StatusError) sendStatus(ctx, err);
    else sendStatus(ctx, unknownError(err instanceof Error ? err.message : String(err)));
  }
}

async function dispatch(s: SandboxState, ctx: Ctx): Promise<void> {
  const r = route(s, ctx.path);
  const fullPath = ctx.query.size > 0 ? `${ctx.path}?${ctx.query.toString()}` : ctx.path;
  const verb = r.t === 'resource' ? verbOf(ctx.method, r, ctx.query) : undefined;
  const fault = takeFault(s, ctx.method, fullPath);
  if (fault) {
    const res =
      r.t === 'resource' ? { group: r.kind.group, resource: r.kind.plural, name: r.name ?? '' } : { group: '', resource: '', name: '' };
    const err = faultStatus(fault.status, { ...res, watch: verb === 'watch' }, fault.reason);
    // The real server reports an expired watch inside a 200 stream, not as an HTTP 410.
    if (verb === 'watch' && fault.status === 410) return watchExpired(ctx, err.status);
    throw err;
  }
  if (r.t !== 'resource' && ctx.method !== 'GET') throw methodNotAllowed('', '', ctx.method);
  switch (r.t) {
    case 'version':
      return send(ctx, 200, SERVER_VERSION);
    case 'health':
      ctx.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      ctx.res.end('ok');
      return ctx.record(200);
    case 'api': {
      const mode = discoveryMode(ctx);
      if (mode)
        return send(ctx, 200, aggregatedDiscovery(s.kinds, true, mode), {
          contentType: mode === 'v2' ? AGGREGATED_V2 : AGGREGATED_V2BETA1,
          headers: { Vary: 'Accept' },
        });
      return send(ctx, 200, apiVersions(new URL(s.url).host), { headers: { Vary: 'Accept' } });
    }
    case 'apis': {
      const mode = discoveryMode(ctx);
      if (mode)
        return send(ctx, 200, aggregatedDiscovery(s.kinds, false, mode), {
          contentType: mode === 'v2' ? AGGREGATED_V2 : AGGREGATED_V2BETA1,
          headers: { Vary: 'Accept' },
        });
      return send(ctx, 200, apiGroupList(s.kinds), { headers: { Vary: 'Accept' } });
    }
    case 'group': {
      const doc = apiGroupDoc(s.kinds, r.group);
      if (!doc) throw pathNotFound();
      return send(ctx, 200, doc);
    }
    case 'gv': {
      const doc = apiResourceList(s.kinds, r.group, r.version);
      if (!doc) throw pathNotFound();
      return send(ctx, 200, doc);
    }
    case 'openapi-v3-index':
      return send(ctx, 200, openApiV3Index(s.kinds, kindsHash(s.kinds)));
    case 'openapi-v3': {
      const doc = openApiV3(s.kinds, r.group, r.version);
      if (!doc) throw pathNotFound();
      return send(ctx, 200, doc);
    }
    case 'resource':
      break;
  }
  if (verb === undefined) throw pathNotFound();
  checkDeny(s, verb, r);
  switch (verb) {
    case 'get':
      return handleGet(s, ctx, r);
    case 'list':
      return handleList(s, ctx, r);
    case 'watch':
      return handleWatch(s, ctx, r);
    case 'create':
      return handleCreate(s, ctx, r);
    case 'update':
      return handleUpdate(s, ctx, r);
    case 'patch':
      return handlePatch(s, ctx, r);
    case 'delete':
      return handleDelete(s, ctx, r);
    case 'deletecollection':
      return handleDeleteCollection(s, ctx, r);
  }
}

function discoveryMode(ctx: Ctx): 'v2' | 'v2beta1' | undefined {
  for (const r of parseAccept(ctx.req.headers.accept)) {
    if (r.type !== 'application/json' || r.params['g'] !== 'apidiscovery.k8s.io' || r.params['as'] !== 'APIGroupDiscoveryList') continue;
    if (r.params['v'] === 'v2') return 'v2';
    if (r.params['v'] === 'v2beta1') return 'v2beta1';
  }
  return undefined;
}

function kindsHash(kinds: readonly ResourceKind[]): string {
  return createHash('sha256')
    .update(JSON.stringify(kinds.map((k) => [k.group, k.version, k.plural])))
    .digest('hex')
    .slice(0, 32)
    .toUpperCase();
}
