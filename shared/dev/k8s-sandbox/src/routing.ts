/** URL → route (discovery documents or a resource), the verb of a request, and the operator's injected denials/faults. */
import { forbidden, methodNotAllowed, pathNotFound } from './status.js';
import { findKind, truthy, type SandboxState } from './state.js';
import type { FaultSpec, ResourceKind } from './types.js';

/** Paths served without a token, like the apiserver's anonymous health and version endpoints. */
export const OPEN_PATHS = ['/version', '/healthz', '/livez', '/readyz'];

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export interface ResourceRoute {
  t: 'resource';
  kind: ResourceKind;
  /** API version the client addressed (objects are presented in it). */
  namespace: string | undefined;
  name: string | undefined;
  sub: string | undefined;
  watchPrefix: boolean;
}

export type Route =
  | { t: 'version' }
  | { t: 'health' }
  | { t: 'api' }
  | { t: 'apis' }
  | { t: 'group'; group: string }
  | { t: 'gv'; group: string; version: string }
  | { t: 'openapi-v3-index' }
  | { t: 'openapi-v3'; group: string; version: string }
  | ResourceRoute;

export function route(s: SandboxState, path: string): Route {
  if (path === '/version' || path === '/version/') return { t: 'version' };
  if (OPEN_PATHS.some((p) => p !== '/version' && (path === p || path.startsWith(`${p}/`)))) return { t: 'health' };
  if (path === '/openapi/v3' || path === '/openapi/v3/') return { t: 'openapi-v3-index' };
  let segs: string[];
  try {
    segs = path
      .split('/')
      .filter((seg) => seg !== '')
      .map((seg) => decodeURIComponent(seg));
  } catch {
    throw pathNotFound();
  }
  if (segs[0] === 'openapi' && segs[1] === 'v3') {
    if (segs[2] === 'api' && segs.length === 4) return { t: 'openapi-v3', group: '', version: segs[3] ?? '' };
    if (segs[2] === 'apis' && segs.length === 5) return { t: 'openapi-v3', group: segs[3] ?? '', version: segs[4] ?? '' };
    throw pathNotFound();
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api') {
    if (segs.length === 1) return { t: 'api' };
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    if (segs.length === 1) return { t: 'apis' };
    if (segs.length === 2) return { t: 'group', group: segs[1] ?? '' };
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else {
    throw pathNotFound();
  }
  if (rest.length === 0) return { t: 'gv', group, version };
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const kind = findKind(s, group, version, rest[2] ?? '');
    if (kind?.namespaced && rest.length <= 5) {
      return { t: 'resource', kind, namespace: rest[1], name: rest[3], sub: checkSub(kind, rest[4]), watchPrefix };
    }
  }
  const kind = findKind(s, group, version, rest[0] ?? '');
  if (!kind || rest.length > 3) throw pathNotFound();
  // A namespaced resource is only reachable without a namespace as a collection (list/watch across namespaces).
  if (kind.namespaced && rest.length > 1) throw pathNotFound();
  return { t: 'resource', kind, namespace: undefined, name: rest[1], sub: checkSub(kind, rest[2]), watchPrefix };
}

function checkSub(kind: ResourceKind, sub: string | undefined): string | undefined {
  if (sub === undefined) return undefined;
  if (sub === 'status' && kind.statusSubresource) return sub;
  throw pathNotFound();
}

export function verbOf(method: string, r: ResourceRoute, query: URLSearchParams): Verb {
  if (method === 'GET') {
    if (r.watchPrefix || truthy(query.get('watch'))) return 'watch';
    return r.name === undefined ? 'list' : 'get';
  }
  if (r.name === undefined) {
    if (method === 'POST') return 'create';
    if (method === 'DELETE') return 'deletecollection';
  } else {
    if (method === 'PUT') return 'update';
    if (method === 'PATCH') return 'patch';
    if (method === 'DELETE') return 'delete';
  }
  throw methodNotAllowed(r.kind.group, r.kind.plural, method);
}

export function checkDeny(s: SandboxState, verb: Verb, r: ResourceRoute): void {
  const resource = r.sub ? `${r.kind.plural}/${r.sub}` : r.kind.plural;
  const ns = r.namespace ?? '';
  const name = r.name ?? '';
  for (const d of s.denies) {
    if (d.verb !== undefined && d.verb !== verb) continue;
    if (d.namespace !== undefined && d.namespace !== ns) continue;
    if (d.name !== undefined && d.name !== name) continue;
    if (d.resource !== undefined && d.resource !== r.kind.plural && d.resource !== resource) continue;
    const where = ns ? `in the namespace "${ns}"` : 'at the cluster scope';
    throw forbidden(
      r.kind.group,
      resource,
      name,
      `User "${s.userName}" cannot ${verb} resource "${resource}" in API group "${r.kind.group}" ${where}`,
    );
  }
}

export function takeFault(s: SandboxState, method: string, fullPath: string): FaultSpec | undefined {
  for (const f of s.faults) {
    if (f.remaining <= 0) continue;
    if (f.method !== undefined && f.method.toUpperCase() !== method) continue;
    if (f.pathIncludes !== undefined && !fullPath.includes(f.pathIncludes)) continue;
    f.remaining -= 1;
    return f;
  }
  return undefined;
}

// ---------------------------------------------------------------- responses
