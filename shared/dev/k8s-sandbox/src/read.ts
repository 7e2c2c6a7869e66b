/** The read verbs: get, list (with limit/continue and selectors) and watch (resume, bookmarks, initial events, timeouts). */
import { randomUUID } from 'node:crypto';
import { negotiate } from './http-util.js';
import { renderOne, send, tableOf, type Ctx } from './respond.js';
import type { ResourceRoute } from './routing.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { apiVersionOf, listKey, present, resourceKey, truthy, type SandboxState } from './state.js';
import { badRequest, expired, notFound, type Status } from './status.js';
import type { Obj, StoreEvent } from './store.js';
import { partialMetadata } from './table.js';

const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

export function selection(r: ResourceRoute, query: URLSearchParams): (o: Obj) => boolean {
  const labels = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'), ['metadata.name', 'metadata.namespace']);
  return (o) =>
    (r.namespace === undefined || (o.metadata.namespace ?? '') === r.namespace) &&
    matchesLabels(labels, o.metadata.labels) &&
    matchesFields(fields, { 'metadata.name': o.metadata.name, 'metadata.namespace': o.metadata.namespace ?? '' });
}

export function handleGet(s: SandboxState, ctx: Ctx, r: ResourceRoute): void {
  const obj = s.store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
  if (!obj) throw notFound(r.kind.group, r.kind.plural, r.name ?? '');
  const out = renderOne(r.kind, obj, negotiate(ctx.req.headers.accept, false), ctx.query);
  send(ctx, 200, out.body, { yaml: out.yaml });
}

export function handleList(s: SandboxState, ctx: Ctx, r: ResourceRoute): void {
  const rendering = negotiate(ctx.req.headers.accept, true);
  const matches = selection(r, ctx.query);
  let items = s.store.list(resourceKey(r.kind), r.namespace).filter(matches);
  const listMeta: Record<string, unknown> = { resourceVersion: String(s.store.currentRv()) };
  const cont = ctx.query.get('continue');
  if (cont) {
    let start: unknown;
    try {
      start = (JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { start?: unknown }).start;
    } catch {
      start = undefined;
    }
    if (typeof start !== 'string') throw badRequest('continue key is not valid: malformed continue token');
    items = items.filter((o) => listKey(o) > start);
  }
  const limit = Number(ctx.query.get('limit') ?? '0');
  if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
    const last = items[limit - 1];
    const remaining = items.length - limit;
    items = items.slice(0, limit);
    if (last) {
      listMeta['continue'] = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: s.store.currentRv(), start: listKey(last) })).toString(
        'base64url',
      );
    }
    if (!ctx.query.get('labelSelector') && !ctx.query.get('fieldSelector')) listMeta['remainingItemCount'] = remaining;
  }
  const presented = items.map((o) => present(r.kind, o));
  switch (rendering.as) {
    case 'Table':
      send(ctx, 200, tableOf(r.kind, presented, rendering.version, ctx.query, listMeta));
      return;
    case 'PartialObjectMetadataList':
      send(ctx, 200, {
        kind: 'PartialObjectMetadataList',
        apiVersion: 'meta.k8s.io/v1',
        metadata: listMeta,
        items: presented.map(partialMetadata),
      });
      return;
    default:
      send(
        ctx,
        200,
        { apiVersion: apiVersionOf(r.kind), kind: `${r.kind.kind}List`, metadata: listMeta, items: presented },
        { yaml: rendering.as === 'plain' && rendering.yaml },
      );
  }
}

function writeWatchHead(ctx: Ctx, table: boolean): void {
  ctx.res.writeHead(200, {
    'Content-Type': table ? 'application/json;as=Table;g=meta.k8s.io;v=v1' : 'application/json',
    'Cache-Control': 'no-cache, private',
    'Audit-Id': randomUUID(),
    'Transfer-Encoding': 'chunked',
  });
  ctx.record(200);
  ctx.res.flushHeaders();
}

export function watchExpired(ctx: Ctx, status: Status): void {
  writeWatchHead(ctx, false);
  ctx.res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
}

export function handleWatch(s: SandboxState, ctx: Ctx, r: ResourceRoute): void {
  const { query } = ctx;
  const kind = r.kind;
  if (r.name !== undefined) {
    // Deprecated /watch/.../NAME form: same as a collection watch narrowed to that name.
    query.set('fieldSelector', [query.get('fieldSelector'), `metadata.name=${r.name}`].filter(Boolean).join(','));
  }
  const matches = selection({ ...r, name: undefined }, query);
  const rendering = negotiate(ctx.req.headers.accept, true);
  const table = rendering.as === 'Table';
  const rvParam = query.get('resourceVersion') ?? '';
  const bookmarks = truthy(query.get('allowWatchBookmarks'));
  const sendInitial = truthy(query.get('sendInitialEvents'));
  const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
  if (rvParam !== '' && !/^\d+$/.test(rvParam)) {
    throw badRequest(`resourceVersion: Invalid value: "${rvParam}": must be a non-negative integer`);
  }

  let backlog: Array<{ type: string; object: Obj }>;
  const fromState = rvParam === '' || rvParam === '0' || sendInitial;
  if (fromState) {
    backlog = s.store
      .list(resourceKey(kind))
      .filter(matches)
      .map((o) => ({ type: 'ADDED', object: o }));
  } else {
    const since = Number(rvParam);
    const events = s.store.eventsSince(resourceKey(kind), since);
    if (events === null) {
      watchExpired(ctx, expired(`too old resource version: ${since} (${s.store.oldestResumableRv(resourceKey(kind))})`));
      return;
    }
    backlog = events.map(translate).filter((e): e is { type: string; object: Obj } => e !== undefined);
  }

  function translate(e: StoreEvent): { type: string; object: Obj } | undefined {
    const now = matches(e.object);
    const was = e.prev ? matches(e.prev) : now;
    if (e.type === 'ADDED') return now ? { type: 'ADDED', object: e.object } : undefined;
    if (e.type === 'DELETED') return was || now ? { type: 'DELETED', object: e.object } : undefined;
    if (was && now) return { type: 'MODIFIED', object: e.object };
    if (now) return { type: 'ADDED', object: e.object };
    if (was) return { type: 'DELETED', object: e.object };
    return undefined;
  }

  writeWatchHead(ctx, table);
  let first = true;
  const gone = () => ctx.res.writableEnded || ctx.res.destroyed;
  const write = (type: string, object: Obj) => {
    if (gone()) return;
    let out: unknown = present(kind, object);
    if (table) {
      out = tableOf(kind, [present(kind, object)], rendering.version, query, { resourceVersion: object.metadata.resourceVersion }, !first);
    } else if (rendering.as === 'PartialObjectMetadataList' || rendering.as === 'PartialObjectMetadata') {
      out = partialMetadata(object);
    }
    first = false;
    ctx.res.write(`${JSON.stringify({ type, object: out })}\n`);
  };
  const bookmark = (annotations?: Record<string, string>) => {
    if (!bookmarks || table || gone()) return;
    const metadata: Record<string, unknown> = { resourceVersion: String(s.store.currentRv()) };
    if (annotations) metadata['annotations'] = annotations;
    ctx.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: kind.kind, apiVersion: apiVersionOf(kind), metadata } })}\n`);
  };

  for (const e of backlog) write(e.type, e.object);
  if (sendInitial) bookmark({ [INITIAL_EVENTS_END]: 'true' });

  const unsubscribe = s.store.subscribe((e) => {
    if (e.resource !== resourceKey(kind)) return;
    const t = translate(e);
    if (t) write(t.type, t.object);
  });
  const bookmarkTimer = bookmarks ? setInterval(() => bookmark(), s.bookmarkIntervalMs) : undefined;
  bookmarkTimer?.unref();
  let timeoutTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    unsubscribe();
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    if (timeoutTimer) clearTimeout(timeoutTimer);
    s.openWatches.delete(stop);
    if (!ctx.res.writableEnded) ctx.res.end();
  };
  // The server's own limit (kube-apiserver: a random 1–2× --min-request-timeout) ends the watch unless the
  // client asked for less; either way the stream just ends and the client resumes or relists.
  const serverLimit = s.watchTimeout ? s.watchTimeout.minMs + Math.random() * (s.watchTimeout.maxMs - s.watchTimeout.minMs) : Infinity;
  const clientLimit = Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds * 1000 : Infinity;
  const limit = Math.min(serverLimit, clientLimit);
  if (Number.isFinite(limit)) {
    timeoutTimer = setTimeout(() => {
      bookmark();
      stop();
    }, limit);
  }
  s.openWatches.add(stop);
  ctx.res.on('close', stop);
  ctx.res.on('error', stop);
}
