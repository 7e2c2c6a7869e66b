import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, isIP, type AddressInfo, type Socket } from 'node:net';
import { dump } from 'js-yaml';
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
import { contentTypeOf, decodeObject, duplicateJsonFields, negotiate, parseAccept, readBody, type Rendering } from './http-util.js';
import { argoApplicationKind, namespaceKind } from './kinds.js';
import { renderKubeconfig } from './kubeconfig.js';
import { clone, deepEqual, jsonPatch, mergePatch, PatchError, type Json } from './patch.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  deleteSuccess,
  expired,
  faultStatus,
  forbidden,
  genericInvalid,
  invalid,
  methodNotAllowed,
  notFound,
  pathNotFound,
  StatusError,
  unauthorized,
  unknownError,
  unsupportedMediaType,
  type FieldError,
  type Status,
} from './status.js';
import { createStore, type Obj, type StoreEvent } from './store.js';
import { createServingCertificate } from './tls.js';
import { partialMetadata, toTable, type IncludeObject } from './table.js';
import type {
  DenyRule,
  FaultSpec,
  KubeconfigOptions,
  RequestRecord,
  ResourceKind,
  SandboxApiServer,
  SandboxOptions,
} from './types.js';

/** Errors the sandbox itself raises (bad options, bad seed) as opposed to API Status answers. */
export class SandboxError extends Error {
  constructor(
    readonly code: 'INVALID_KIND' | 'INVALID_FAULT' | 'UNKNOWN_KIND' | 'INVALID_SEED' | 'LISTEN_FAILED' | 'INVALID_WATCH_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}

/** A real apiserver's watch behaviour: ~75 s of resume history, every watch ended after a random 30–60 min. */
export const PRODUCTION_WATCHES: Pick<SandboxOptions, 'watchHistoryMs' | 'watchTimeout'> = { watchHistoryMs: 75_000, watchTimeout: { minMs: 30 * 60_000, maxMs: 60 * 60_000 } };

const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'argocd'];
const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const APPLY = 'application/apply-patch+yaml';
const SMP = 'application/strategic-merge-patch+json';
/** What the apiserver lists in its 415 for custom resources; strategic merge patch is for built-in types only. */
const CR_PATCH_TYPES = [JSON_PATCH, MERGE, APPLY];
const BUILTIN_PATCH_TYPES = [JSON_PATCH, MERGE, SMP, APPLY];
const OPEN_PATHS = ['/version', '/healthz', '/livez', '/readyz'];
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

interface ResourceRoute {
  t: 'resource';
  kind: ResourceKind;
  /** API version the client addressed (objects are presented in it). */
  namespace: string | undefined;
  name: string | undefined;
  sub: string | undefined;
  watchPrefix: boolean;
}

type Route =
  | { t: 'version' }
  | { t: 'health' }
  | { t: 'api' }
  | { t: 'apis' }
  | { t: 'group'; group: string }
  | { t: 'gv'; group: string; version: string }
  | { t: 'openapi-v3-index' }
  | { t: 'openapi-v3'; group: string; version: string }
  | ResourceRoute;

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  query: URLSearchParams;
  /** `Warning` headers of the answer (299 warnings, e.g. unknown fields under fieldValidation=Warn). */
  warnings: string[];
  record(status: number): void;
}

/**
 * How a write treats unknown and duplicate fields (`fieldValidation`): Strict refuses with 400, Warn (the server's
 * default) drops them with a Warning header, Ignore drops them silently.
 */
interface FieldCheck {
  mode: 'Strict' | 'Warn' | 'Ignore';
  /** Keys the request body repeats in one object. */
  duplicates: string[];
  warnings: string[];
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function truthy(v: string | null): boolean {
  return v === 'true' || v === '1';
}

function apiVersionOf(kind: ResourceKind): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version;
}

function resourceKey(kind: ResourceKind): string {
  return `${kind.group}/${kind.plural}`;
}

/** The order LIST returns items in (namespace, then name — etcd key order); continue tokens resume after one. */
function listKey(o: Obj): string {
  return `${o.metadata.namespace ?? ''}\u0000${o.metadata.name}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `a.b: Required value` -> a FieldError with the cause type the real validators use for that wording. */
function problemToFieldError(p: string): FieldError {
  const m = /^([A-Za-z0-9_.[\]\-<>/]+): ([\s\S]*)$/.exec(p);
  const field = m ? (m[1] ?? '') : '';
  const body = m ? (m[2] ?? '') : p;
  let type = 'FieldValueInvalid';
  if (body.startsWith('Required value')) type = 'FieldValueRequired';
  else if (body.startsWith('Unsupported value')) type = 'FieldValueNotSupported';
  else if (body.startsWith('Forbidden')) type = 'FieldValueForbidden';
  else if (body.startsWith('Duplicate value')) type = 'FieldValueDuplicate';
  else if (body.startsWith('Too long')) type = 'FieldValueTooLong';
  else if (body.startsWith('Too many')) type = 'FieldValueTooMany';
  else if (body.includes('must be of type')) type = 'FieldValueTypeInvalid';
  return { type, field, body };
}

function nameProblems(kind: ResourceKind, name: string): FieldError[] {
  const label = kind === namespaceKind || (kind.group === '' && kind.plural === 'namespaces');
  const max = label ? 63 : 253;
  const errs: FieldError[] = [];
  if (name.length > max) {
    errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', body: `Invalid value: "${name}": must be no more than ${max} characters` });
  }
  if (!(label ? DNS1123_LABEL : DNS1123_SUBDOMAIN).test(name)) {
    errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', body: `Invalid value: "${name}": ${label ? LABEL_MSG : SUBDOMAIN_MSG}` });
  }
  return errs;
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(): string {
  const bytes = randomBytes(5);
  return [...bytes].map((b) => NAME_ALPHABET[b % NAME_ALPHABET.length]).join('');
}

export async function createSandboxApiServer(opts: SandboxOptions = {}): Promise<SandboxApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const userName = opts.userName ?? 'system:serviceaccount:argocd:gitops-gate';
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 60_000;
  const store = createStore({
    watchHistory: opts.watchHistory ?? 1000,
    ...(opts.watchHistoryMs !== undefined ? { watchHistoryMs: opts.watchHistoryMs } : {}),
    startRv: 1000,
  });
  if (opts.watchTimeout && !(opts.watchTimeout.minMs > 0 && opts.watchTimeout.maxMs >= opts.watchTimeout.minMs)) {
    throw new SandboxError('INVALID_WATCH_TIMEOUT', 'watchTimeout needs 0 < minMs <= maxMs');
  }
  const kinds: ResourceKind[] = [];
  const faults: Array<FaultSpec & { remaining: number }> = [];
  const denies: DenyRule[] = [];
  const log: RequestRecord[] = [];
  const openWatches = new Set<() => void>();
  let url = '';

  function registerKind(k: ResourceKind): void {
    for (const f of ['version', 'kind', 'plural', 'singular'] as const) {
      if (typeof k[f] !== 'string' || k[f] === '') throw new SandboxError('INVALID_KIND', `ResourceKind.${f} is required`);
    }
    if (k.plural !== k.plural.toLowerCase()) throw new SandboxError('INVALID_KIND', 'ResourceKind.plural must be lower case');
    const i = kinds.findIndex((x) => x.group === k.group && x.version === k.version && x.plural === k.plural);
    if (i >= 0) kinds[i] = k;
    else kinds.push(k);
  }

  registerKind(namespaceKind);
  for (const k of opts.kinds ?? [argoApplicationKind]) registerKind(k);

  const findKind = (group: string, version: string, plural: string) =>
    kinds.find((k) => k.group === group && k.version === version && k.plural === plural);

  const namespaceExists = (ns: string) => store.get(resourceKey(namespaceKind), '', ns) !== undefined;

  /** Objects are stored in the version they were written in; hand them out in the version the client addressed. */
  function present(kind: ResourceKind, obj: Obj): Obj {
    // Defaults apply on read too (a default added to the CRD later shows on old objects); idempotent, so in place.
    kind.schema?.applyDefaults(obj);
    const apiVersion = apiVersionOf(kind);
    return obj['apiVersion'] === apiVersion ? obj : { ...obj, apiVersion };
  }

  // ---------------------------------------------------------------- object lifecycle (shared by API and seed)

  function newNamespaceObject(name: string): Record<string, unknown> {
    return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
  }

  /** Fills server-set metadata on create; throws 4xx/422 Status for what the real create path rejects. */
  function prepareCreate(kind: ResourceKind, body: Record<string, unknown>, urlNamespace: string | undefined, fields?: FieldCheck): Obj {
    checkTypeMeta(kind, body);
    const obj = clone(body) as Obj;
    if (!isObject(obj.metadata)) obj.metadata = { name: '' };
    const meta = obj.metadata;
    if (kind.namespaced) {
      if (meta.namespace && urlNamespace && meta.namespace !== urlNamespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = urlNamespace ?? meta.namespace ?? 'default';
    } else {
      delete meta.namespace;
    }
    if (meta.resourceVersion) throw unknownError('resourceVersion should not be set on objects to be created');
    if (!meta.name) {
      if (!meta.generateName) {
        throw invalid(kind.group, kind.kind, '', [
          { type: 'FieldValueRequired', field: 'metadata.name', body: 'Required value: name or generateName is required' },
        ]);
      }
      do {
        meta.name = `${meta.generateName}${randomSuffix()}`;
      } while (store.get(resourceKey(kind), meta.namespace ?? '', meta.name));
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.managedFields;
    delete meta.selfLink;
    if (kind.group === '' && kind.plural === 'namespaces') {
      delete meta.generation;
      meta.labels = { ...(meta.labels ?? {}), 'kubernetes.io/metadata.name': meta.name };
      obj['spec'] = { finalizers: ['kubernetes'], ...(isObject(obj['spec']) ? obj['spec'] : {}) };
      obj['status'] = { phase: 'Active' };
    } else {
      meta.generation = 1;
      if (kind.statusSubresource) delete obj['status'];
    }
    applySchema(kind, obj, fields);
    validateObject(kind, obj);
    return obj;
  }

  /** Structural-schema pruning and defaulting (custom kinds), and what fieldValidation says about dropped fields. */
  function applySchema(kind: ResourceKind, obj: Obj, fields: FieldCheck | undefined): void {
    const problems = (fields?.duplicates ?? []).map((f) => `duplicate field "${f}"`);
    if (kind.schema) problems.push(...kind.schema.prune(obj).map((f) => `unknown field "${f}"`));
    if (fields && problems.length > 0) {
      if (fields.mode === 'Strict') {
        throw badRequest(`${kind.kind} in version "${kind.version}" cannot be handled as a ${kind.kind}: strict decoding error: ${problems.join(', ')}`);
      }
      if (fields.mode === 'Warn') fields.warnings.push(...problems);
    }
    kind.schema?.applyDefaults(obj);
  }

  function checkTypeMeta(kind: ResourceKind, body: Record<string, unknown>): void {
    const apiVersion = body['apiVersion'];
    const k = body['kind'];
    if (typeof k !== 'string' || k === '') throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    if (typeof apiVersion !== 'string' || apiVersion === '') {
      throw badRequest(`Object 'apiVersion' is missing in '${JSON.stringify(body)}'`);
    }
    const sameGroup = kind.group ? apiVersion.startsWith(`${kind.group}/`) : !apiVersion.includes('/');
    if (!sameGroup || k !== kind.kind) {
      throw badRequest(
        `the API version in the data (${apiVersion}) does not match the expected API version (${apiVersionOf(kind)})`,
      );
    }
  }

  function validateObject(kind: ResourceKind, obj: Obj): void {
    const errs = [...nameProblems(kind, obj.metadata.name)];
    if (kind.validate) errs.push(...kind.validate(obj).map(problemToFieldError));
    if (errs.length > 0) throw invalid(kind.group, kind.kind, obj.metadata.name, errs);
  }

  /** True when anything outside metadata (and outside status, when status is a subresource) differs. */
  function specChanged(kind: ResourceKind, a: Obj, b: Obj): boolean {
    const strip = (o: Obj) => {
      const { metadata: _m, ...rest } = o;
      if (kind.statusSubresource) delete rest['status'];
      return rest as Json;
    };
    return !deepEqual(strip(a), strip(b));
  }

  /**
   * rest.BeforeUpdate: keeps server-owned metadata from the stored object, refuses a changed uid, bumps generation on
   * spec changes, and (for a status subresource) lets each endpoint change only its half.
   */
  function prepareUpdate(kind: ResourceKind, old: Obj, candidate: Record<string, unknown>, sub: string | undefined, fields?: FieldCheck): Obj {
    checkTypeMeta(kind, candidate);
    let obj = clone(candidate) as Obj;
    if (!isObject(obj.metadata)) obj.metadata = { name: old.metadata.name };
    if (sub === 'status') {
      obj = { ...clone(old), status: clone(candidate['status'] ?? null) } as Obj;
      if (candidate['status'] === undefined) delete obj['status'];
    } else if (kind.statusSubresource) {
      if (old['status'] === undefined) delete obj['status'];
      else obj['status'] = clone(old['status']);
    }
    // Pruned and defaulted before comparing, so a dropped unknown field never bumps generation.
    applySchema(kind, obj, fields);
    const meta = obj.metadata;
    if (meta.uid && meta.uid !== old.metadata.uid) {
      throw invalid(kind.group, kind.kind, old.metadata.name, [
        { type: 'FieldValueInvalid', field: 'metadata.uid', body: `Invalid value: "${meta.uid}": field is immutable` },
      ]);
    }
    meta.name = old.metadata.name;
    if (old.metadata.namespace !== undefined) meta.namespace = old.metadata.namespace;
    meta.uid = old.metadata.uid;
    meta.creationTimestamp = old.metadata.creationTimestamp;
    if (old.metadata.deletionTimestamp) {
      meta.deletionTimestamp = old.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
    } else {
      delete meta.deletionTimestamp;
      delete meta.deletionGracePeriodSeconds;
    }
    delete meta.managedFields;
    delete meta.selfLink;
    meta.resourceVersion = old.metadata.resourceVersion;
    if (old.metadata.generation === undefined) delete meta.generation;
    else meta.generation = old.metadata.generation + (specChanged(kind, old, obj) ? 1 : 0);
    if (kind.group === '' && kind.plural === 'namespaces') obj['status'] = clone(old['status'] ?? { phase: 'Active' });
    validateObject(kind, obj);
    return obj;
  }

  /** Commits an update; a no-op write changes nothing (no new resourceVersion, no event), as with etcd. */
  function commitUpdate(kind: ResourceKind, old: Obj, next: Obj, dryRun: boolean): Obj {
    if (deepEqual(old as unknown as Json, next as unknown as Json)) return old;
    if (dryRun) return next;
    // An update that removes the last finalizer of an object being deleted completes the deletion.
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      return store.commit(resourceKey(kind), 'DELETED', next, old).object;
    }
    return store.commit(resourceKey(kind), 'MODIFIED', next, old).object;
  }

  /** Deletes now, or — with finalizers — marks for deletion and waits for whoever owns them to remove them. */
  function deleteObject(kind: ResourceKind, old: Obj, dryRun: boolean): { obj: Obj; gone: boolean } {
    if ((old.metadata.finalizers ?? []).length > 0) {
      if (old.metadata.deletionTimestamp) return { obj: old, gone: false };
      const marked = clone(old);
      marked.metadata.deletionTimestamp = timestamp();
      marked.metadata.deletionGracePeriodSeconds = 0;
      if (marked.metadata.generation !== undefined) marked.metadata.generation += 1;
      if (dryRun) return { obj: marked, gone: false };
      return { obj: store.commit(resourceKey(kind), 'MODIFIED', marked, old).object, gone: false };
    }
    const last = clone(old);
    if (kind.group === '' && kind.plural === 'namespaces') {
      last['status'] = { phase: 'Terminating' };
      if (!dryRun) {
        // No namespace controller here: the namespace's contents go at once, each with its DELETED event.
        for (const k of kinds.filter((x) => x.namespaced)) {
          for (const o of store.list(resourceKey(k), old.metadata.name)) {
            store.commit(resourceKey(k), 'DELETED', clone(o), o);
          }
        }
      }
    }
    if (dryRun) return { obj: last, gone: true };
    return { obj: store.commit(resourceKey(kind), 'DELETED', last, old).object, gone: true };
  }

  // ---------------------------------------------------------------- seed

  const ensureNamespace = (ns: string) => {
    if (!namespaceExists(ns)) store.commit(resourceKey(namespaceKind), 'ADDED', prepareCreate(namespaceKind, newNamespaceObject(ns), undefined));
  };
  for (const ns of opts.namespaces ?? DEFAULT_NAMESPACES) ensureNamespace(ns);

  function seedOne(raw: object): void {
    const body = raw as Record<string, unknown>;
    const apiVersion = String(body['apiVersion'] ?? '');
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
    const kind = kinds.find((k) => k.group === group && k.version === version && k.kind === body['kind']);
    if (!kind) throw new SandboxError('UNKNOWN_KIND', `seed object of kind ${String(body['kind'])} (${apiVersion}) is not served`);
    const meta = isObject(body['metadata']) ? (body['metadata'] as Record<string, unknown>) : {};
    const ns = kind.namespaced ? (typeof meta['namespace'] === 'string' && meta['namespace'] ? meta['namespace'] : 'default') : undefined;
    try {
      if (ns !== undefined) ensureNamespace(ns);
      const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...cleanMeta } = meta;
      const obj = prepareCreate(kind, { ...body, metadata: cleanMeta }, ns);
      if (store.get(resourceKey(kind), obj.metadata.namespace ?? '', obj.metadata.name)) {
        throw alreadyExists(kind.group, kind.plural, obj.metadata.name);
      }
      store.commit(resourceKey(kind), 'ADDED', obj);
    } catch (err) {
      if (err instanceof StatusError) throw new SandboxError('INVALID_SEED', `seed object rejected: ${err.message}`);
      throw err;
    }
  }
  for (const s of opts.seed ?? []) {
    // Namespace objects in a seed just confirm what ensureNamespace would create.
    const b = s as Record<string, unknown>;
    if (b['kind'] === 'Namespace' && b['apiVersion'] === 'v1' && isObject(b['metadata'])) {
      const name = (b['metadata'] as Record<string, unknown>)['name'];
      if (typeof name === 'string' && namespaceExists(name)) continue;
    }
    seedOne(s);
  }

  // ---------------------------------------------------------------- routing

  function route(path: string): Route {
    if (path === '/version' || path === '/version/') return { t: 'version' };
    if (OPEN_PATHS.some((p) => p !== '/version' && (path === p || path.startsWith(`${p}/`)))) return { t: 'health' };
    if (path === '/openapi/v3' || path === '/openapi/v3/') return { t: 'openapi-v3-index' };
    let segs: string[];
    try {
      segs = path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
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
      const kind = findKind(group, version, rest[2] ?? '');
      if (kind?.namespaced && rest.length <= 5) {
        return { t: 'resource', kind, namespace: rest[1], name: rest[3], sub: checkSub(kind, rest[4]), watchPrefix };
      }
    }
    const kind = findKind(group, version, rest[0] ?? '');
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

  function verbOf(method: string, r: ResourceRoute, query: URLSearchParams): Verb {
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

  function checkDeny(verb: Verb, r: ResourceRoute): void {
    const resource = r.sub ? `${r.kind.plural}/${r.sub}` : r.kind.plural;
    const ns = r.namespace ?? '';
    const name = r.name ?? '';
    for (const d of denies) {
      if (d.verb !== undefined && d.verb !== verb) continue;
      if (d.namespace !== undefined && d.namespace !== ns) continue;
      if (d.name !== undefined && d.name !== name) continue;
      if (d.resource !== undefined && d.resource !== r.kind.plural && d.resource !== resource) continue;
      const where = ns ? `in the namespace "${ns}"` : 'at the cluster scope';
      throw forbidden(
        r.kind.group,
        resource,
        name,
        `User "${userName}" cannot ${verb} resource "${resource}" in API group "${r.kind.group}" ${where}`,
      );
    }
  }

  function takeFault(method: string, fullPath: string): FaultSpec | undefined {
    for (const f of faults) {
      if (f.remaining <= 0) continue;
      if (f.method !== undefined && f.method.toUpperCase() !== method) continue;
      if (f.pathIncludes !== undefined && !fullPath.includes(f.pathIncludes)) continue;
      f.remaining -= 1;
      return f;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- responses

  function send(ctx: Ctx, status: number, body: unknown, opts: { contentType?: string; yaml?: boolean; headers?: Record<string, string> } = {}): void {
    const yaml = opts.yaml === true;
    const text = yaml ? dump(body) : `${JSON.stringify(body)}\n`;
    ctx.res.writeHead(status, {
      'Content-Type': opts.contentType ?? (yaml ? 'application/yaml' : 'application/json'),
      'Cache-Control': 'no-cache, private',
      'Audit-Id': randomUUID(),
      ...(ctx.warnings.length > 0 ? { Warning: ctx.warnings.map((w) => `299 - ${JSON.stringify(w)}`) } : {}),
      ...(opts.headers ?? {}),
    });
    ctx.res.end(text);
    ctx.record(status);
  }

  function sendStatus(ctx: Ctx, err: StatusError): void {
    send(ctx, err.status.code, err.status, { headers: err.headers });
  }

  function renderOne(kind: ResourceKind, obj: Obj, rendering: Rendering, query: URLSearchParams): { body: unknown; yaml: boolean } {
    switch (rendering.as) {
      case 'Table':
        return { body: tableOf(kind, [present(kind, obj)], rendering.version, query, { resourceVersion: obj.metadata.resourceVersion }), yaml: false };
      case 'PartialObjectMetadata':
        return { body: partialMetadata(obj), yaml: false };
      default:
        return { body: present(kind, obj), yaml: rendering.as === 'plain' && rendering.yaml };
    }
  }

  function tableOf(kind: ResourceKind, objs: Obj[], version: string, query: URLSearchParams, listMeta: Record<string, unknown>, noHeaders = false): object {
    const include = (query.get('includeObject') ?? 'Metadata') as IncludeObject;
    const t = toTable(kind, objs, { include: ['None', 'Metadata', 'Object'].includes(include) ? include : 'Metadata', listMeta, noHeaders }) as Record<string, unknown>;
    if (version === 'v1beta1') t['apiVersion'] = 'meta.k8s.io/v1beta1';
    return t;
  }

  // ---------------------------------------------------------------- handlers

  function selection(r: ResourceRoute, query: URLSearchParams): (o: Obj) => boolean {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'), ['metadata.name', 'metadata.namespace']);
    return (o) =>
      (r.namespace === undefined || (o.metadata.namespace ?? '') === r.namespace) &&
      matchesLabels(labels, o.metadata.labels) &&
      matchesFields(fields, { 'metadata.name': o.metadata.name, 'metadata.namespace': o.metadata.namespace ?? '' });
  }

  function handleGet(ctx: Ctx, r: ResourceRoute): void {
    const obj = store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
    if (!obj) throw notFound(r.kind.group, r.kind.plural, r.name ?? '');
    const out = renderOne(r.kind, obj, negotiate(ctx.req.headers.accept, false), ctx.query);
    send(ctx, 200, out.body, { yaml: out.yaml });
  }

  function handleList(ctx: Ctx, r: ResourceRoute): void {
    const rendering = negotiate(ctx.req.headers.accept, true);
    const matches = selection(r, ctx.query);
    let items = store.list(resourceKey(r.kind), r.namespace).filter(matches);
    const listMeta: Record<string, unknown> = { resourceVersion: String(store.currentRv()) };
    const cont = ctx.query.get('continue');
    if (cont) {
      let start: string;
      try {
        const parsed = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { start?: unknown };
        if (typeof parsed.start !== 'string') throw new Error('no start');
        start = parsed.start;
      } catch {
        throw badRequest('continue key is not valid: malformed continue token');
      }
      items = items.filter((o) => listKey(o) > start);
    }
    const limit = Number(ctx.query.get('limit') ?? '0');
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const last = items[limit - 1];
      const remaining = items.length - limit;
      items = items.slice(0, limit);
      if (last) {
        listMeta['continue'] = Buffer.from(
          JSON.stringify({ v: 'meta.k8s.io/v1', rv: store.currentRv(), start: listKey(last) }),
        ).toString('base64url');
      }
      if (!ctx.query.get('labelSelector') && !ctx.query.get('fieldSelector')) listMeta['remainingItemCount'] = remaining;
    }
    const presented = items.map((o) => present(r.kind, o));
    switch (rendering.as) {
      case 'Table':
        send(ctx, 200, tableOf(r.kind, presented, rendering.version, ctx.query, listMeta));
        return;
      case 'PartialObjectMetadataList':
        send(ctx, 200, { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: listMeta, items: presented.map(partialMetadata) });
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

  function watchExpired(ctx: Ctx, status: Status): void {
    writeWatchHead(ctx, false);
    ctx.res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
  }

  function handleWatch(ctx: Ctx, r: ResourceRoute): void {
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

    let backlog: Array<{ type: string; object: Obj }> = [];
    const fromState = rvParam === '' || rvParam === '0' || sendInitial;
    if (fromState) {
      backlog = store.list(resourceKey(kind)).filter(matches).map((o) => ({ type: 'ADDED', object: o }));
    } else {
      const since = Number(rvParam);
      const events = store.eventsSince(resourceKey(kind), since);
      if (events === null) {
        watchExpired(ctx, expired(`too old resource version: ${since} (${store.oldestResumableRv(resourceKey(kind))})`));
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
      const metadata: Record<string, unknown> = { resourceVersion: String(store.currentRv()) };
      if (annotations) metadata['annotations'] = annotations;
      ctx.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: kind.kind, apiVersion: apiVersionOf(kind), metadata } })}\n`);
    };

    for (const e of backlog) write(e.type, e.object);
    if (sendInitial) bookmark({ [INITIAL_EVENTS_END]: 'true' });

    const unsubscribe = store.subscribe((e) => {
      if (e.resource !== resourceKey(kind)) return;
      const t = translate(e);
      if (t) write(t.type, t.object);
    });
    const bookmarkTimer = bookmarks ? setInterval(() => bookmark(), bookmarkIntervalMs) : undefined;
    bookmarkTimer?.unref();
    let timeoutTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      unsubscribe();
      if (bookmarkTimer) clearInterval(bookmarkTimer);
      if (timeoutTimer) clearTimeout(timeoutTimer);
      openWatches.delete(stop);
      if (!ctx.res.writableEnded) ctx.res.end();
    };
    // The server's own limit (kube-apiserver: a random 1–2× --min-request-timeout) ends the watch unless the
    // client asked for less; either way the stream just ends and the client resumes or relists.
    const serverLimit = opts.watchTimeout ? opts.watchTimeout.minMs + Math.random() * (opts.watchTimeout.maxMs - opts.watchTimeout.minMs) : Infinity;
    const clientLimit = Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds * 1000 : Infinity;
    const limit = Math.min(serverLimit, clientLimit);
    if (Number.isFinite(limit)) {
      timeoutTimer = setTimeout(() => {
        bookmark();
        stop();
      }, limit);
    }
    openWatches.add(stop);
    ctx.res.on('close', stop);
    ctx.res.on('error', stop);
  }

  function isDryRun(query: URLSearchParams, bodyDryRun?: unknown): boolean {
    const all = query.getAll('dryRun');
    if (all.some((v) => v !== 'All')) throw badRequest(`dryRun: Unsupported value: "${all.find((v) => v !== 'All')}": supported values: "All"`);
    return all.length > 0 || (Array.isArray(bodyDryRun) && bodyDryRun.includes('All'));
  }

  function fieldCheck(ctx: Ctx, jsonBody: Buffer | undefined): FieldCheck {
    const v = ctx.query.get('fieldValidation') ?? '';
    if (v !== '' && v !== 'Strict' && v !== 'Warn' && v !== 'Ignore') {
      throw badRequest(`fieldValidation: Unsupported value: "${v}": supported values: "Ignore", "Warn", "Strict"`);
    }
    const mode = v === '' ? 'Warn' : v;
    const isJson = jsonBody !== undefined && (contentTypeOf(ctx.req) !== 'application/yaml');
    return { mode, duplicates: mode !== 'Ignore' && isJson ? duplicateJsonFields(jsonBody.toString('utf8')) : [], warnings: ctx.warnings };
  }

  function requestBodyObject(ctx: Ctx, body: Buffer): Record<string, unknown> {
    const ct = contentTypeOf(ctx.req);
    if (ct === '' || ct === 'application/json') return decodeObject(body, false);
    if (ct === 'application/yaml') return decodeObject(body, true);
    throw unsupportedMediaType(['application/json', 'application/yaml']);
  }

  async function handleCreate(ctx: Ctx, r: ResourceRoute): Promise<void> {
    if (r.kind.namespaced && r.namespace === undefined) throw methodNotAllowed(r.kind.group, r.kind.plural, 'create');
    const raw = await readBody(ctx.req);
    const body = requestBodyObject(ctx, raw);
    const fields = fieldCheck(ctx, raw);
    const dryRun = isDryRun(ctx.query);
    if (r.namespace !== undefined && !namespaceExists(r.namespace)) throw notFound('', 'namespaces', r.namespace);
    const obj = prepareCreate(r.kind, body, r.namespace, fields);
    if (store.get(resourceKey(r.kind), obj.metadata.namespace ?? '', obj.metadata.name)) {
      throw alreadyExists(r.kind.group, r.kind.plural, obj.metadata.name);
    }
    const out = dryRun ? obj : store.commit(resourceKey(r.kind), 'ADDED', obj).object;
    send(ctx, 201, present(r.kind, out));
  }

  function existing(r: ResourceRoute): Obj {
    const obj = store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
    if (!obj) throw notFound(r.kind.group, r.kind.plural, r.name ?? '');
    return obj;
  }

  /** The optimistic-concurrency check every update path shares (store.Update). */
  function checkResourceVersion(r: ResourceRoute, old: Obj, candidate: Record<string, unknown>): void {
    const meta = isObject(candidate['metadata']) ? (candidate['metadata'] as Record<string, unknown>) : {};
    const rv = meta['resourceVersion'];
    if (rv === undefined || rv === null || rv === '') {
      // Custom resources do not allow unconditional updates; the error names the resource, not the kind.
      throw invalid(r.kind.group, r.kind.plural, r.name ?? '', [
        { type: 'FieldValueInvalid', field: 'metadata.resourceVersion', body: 'Invalid value: 0x0: must be specified for an update' },
      ]);
    }
    if (String(rv) !== old.metadata.resourceVersion) throw conflict(r.kind.group, r.kind.plural, r.name ?? '');
  }

  function checkName(r: ResourceRoute, candidate: Record<string, unknown>): void {
    const meta = isObject(candidate['metadata']) ? (candidate['metadata'] as Record<string, unknown>) : {};
    if (meta['name'] !== undefined && meta['name'] !== r.name) {
      throw badRequest(`the name of the object (${String(meta['name'])}) does not match the name on the URL (${r.name ?? ''})`);
    }
    if (r.kind.namespaced && meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== r.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
  }

  async function handleUpdate(ctx: Ctx, r: ResourceRoute): Promise<void> {
    const raw = await readBody(ctx.req);
    const body = requestBodyObject(ctx, raw);
    const fields = fieldCheck(ctx, raw);
    const dryRun = isDryRun(ctx.query);
    checkName(r, body);
    const old = existing(r);
    checkResourceVersion(r, old, body);
    const next = prepareUpdate(r.kind, old, body, r.sub, fields);
    send(ctx, 200, present(r.kind, commitUpdate(r.kind, old, next, dryRun)));
  }

  async function handlePatch(ctx: Ctx, r: ResourceRoute): Promise<void> {
    const ct = contentTypeOf(ctx.req);
    const allowed = r.kind.group === '' ? BUILTIN_PATCH_TYPES : CR_PATCH_TYPES;
    if (!allowed.includes(ct)) throw unsupportedMediaType(allowed);
    const raw = await readBody(ctx.req);
    const dryRun = isDryRun(ctx.query);
    if (ct === APPLY) return handleApply(ctx, r, raw, dryRun);
    const fields = fieldCheck(ctx, ct === MERGE ? raw : undefined);
    let patch: unknown;
    try {
      patch = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw badRequest(`error decoding patch: ${(err as Error).message}`);
    }
    const old = existing(r);
    let patched: Json;
    try {
      if (ct === JSON_PATCH) patched = jsonPatch(old as unknown as Json, patch);
      else {
        if (!isObject(patch)) throw new PatchError('PATCH_MALFORMED', 'Invalid JSON Patch');
        // Strategic merge patch on the built-in Namespace is close enough to a merge patch for its map-only fields.
        patched = mergePatch(old as unknown as Json, patch as Json);
      }
    } catch (err) {
      if (err instanceof PatchError) throw err.code === 'PATCH_MALFORMED' ? badRequest(err.message) : genericInvalid();
      throw err;
    }
    if (!isObject(patched)) throw genericInvalid();
    checkName(r, patched);
    checkResourceVersion(r, old, patched);
    const next = prepareUpdate(r.kind, old, patched, r.sub, fields);
    send(ctx, 200, present(r.kind, commitUpdate(r.kind, old, next, dryRun)));
  }

  /**
   * Server-side apply, simplified: creates the object when absent, otherwise merges the applied configuration into the
   * live object (maps merge, lists and scalars are replaced). There is no field ownership: fields dropped from the
   * applied configuration are not removed and there are no apply conflicts.
   */
  function handleApply(ctx: Ctx, r: ResourceRoute, raw: Buffer, dryRun: boolean): void {
    if (!ctx.query.get('fieldManager')) {
      throw invalid('meta.k8s.io', 'PatchOptions', '', [
        { type: 'FieldValueRequired', field: 'fieldManager', body: 'Required value: is required for apply patch' },
      ]);
    }
    const applied = decodeObject(raw, true);
    const fields = fieldCheck(ctx, undefined);
    checkName(r, applied);
    const live = store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
    if (!live) {
      if (r.namespace !== undefined && !namespaceExists(r.namespace)) throw notFound('', 'namespaces', r.namespace);
      const meta = isObject(applied['metadata']) ? applied['metadata'] : {};
      const obj = prepareCreate(r.kind, { ...applied, metadata: { ...meta, name: r.name } }, r.namespace, fields);
      const out = dryRun ? obj : store.commit(resourceKey(r.kind), 'ADDED', obj).object;
      send(ctx, 201, present(r.kind, out));
      return;
    }
    const merged = applyMerge(live as unknown as Json, applied as unknown as Json) as Record<string, unknown>;
    const appliedMeta = isObject(applied['metadata']) ? applied['metadata'] : {};
    if (appliedMeta['resourceVersion'] === undefined) (merged['metadata'] as Record<string, unknown>)['resourceVersion'] = live.metadata.resourceVersion;
    checkResourceVersion(r, live, merged);
    const next = prepareUpdate(r.kind, live, merged, r.sub, fields);
    send(ctx, 200, present(r.kind, commitUpdate(r.kind, live, next, dryRun)));
  }

  function applyMerge(live: Json, applied: Json): Json {
    if (!isObject(applied) || !isObject(live)) return clone(applied);
    const out: Record<string, Json> = { ...(live as Record<string, Json>) };
    for (const [k, v] of Object.entries(applied as Record<string, Json>)) {
      if (v === null) continue;
      out[k] = applyMerge(out[k] ?? null, v);
    }
    return out;
  }

  async function deleteOptions(ctx: Ctx): Promise<Record<string, unknown>> {
    const raw = await readBody(ctx.req);
    if (raw.length === 0) return {};
    return decodeObject(raw, contentTypeOf(ctx.req) === 'application/yaml');
  }

  async function handleDelete(ctx: Ctx, r: ResourceRoute): Promise<void> {
    const options = await deleteOptions(ctx);
    const dryRun = isDryRun(ctx.query, options['dryRun']);
    const old = existing(r);
    const pre = isObject(options['preconditions']) ? options['preconditions'] : {};
    if (typeof pre['uid'] === 'string' && pre['uid'] !== old.metadata.uid) {
      throw conflict(r.kind.group, r.kind.plural, r.name ?? '', `Precondition failed: UID in precondition: ${pre['uid']}, UID in object meta: ${old.metadata.uid ?? ''}`);
    }
    if (typeof pre['resourceVersion'] === 'string' && pre['resourceVersion'] !== old.metadata.resourceVersion) {
      throw conflict(
        r.kind.group,
        r.kind.plural,
        r.name ?? '',
        `Precondition failed: ResourceVersion in precondition: ${pre['resourceVersion']}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ''}`,
      );
    }
    const { obj, gone } = deleteObject(r.kind, old, dryRun);
    // Custom resources answer a completed delete with a Success Status; built-in namespaces return the object.
    if (gone && r.kind.group !== '') send(ctx, 200, deleteSuccess(r.kind.group, r.kind.plural, obj.metadata.name, obj.metadata.uid ?? ''));
    else send(ctx, 200, present(r.kind, obj));
  }

  async function handleDeleteCollection(ctx: Ctx, r: ResourceRoute): Promise<void> {
    const options = await deleteOptions(ctx);
    const dryRun = isDryRun(ctx.query, options['dryRun']);
    const matches = selection(r, ctx.query);
    const deleted = store
      .list(resourceKey(r.kind), r.namespace)
      .filter(matches)
      .map((o) => deleteObject(r.kind, o, dryRun).obj);
    send(ctx, 200, {
      apiVersion: apiVersionOf(r.kind),
      kind: `${r.kind.kind}List`,
      metadata: { resourceVersion: String(store.currentRv()) },
      items: deleted.map((o) => present(r.kind, o)),
    });
  }

  function discoveryMode(ctx: Ctx): 'v2' | 'v2beta1' | undefined {
    for (const r of parseAccept(ctx.req.headers.accept)) {
      if (r.type !== 'application/json' || r.params['g'] !== 'apidiscovery.k8s.io' || r.params['as'] !== 'APIGroupDiscoveryList') continue;
      if (r.params['v'] === 'v2') return 'v2';
      if (r.params['v'] === 'v2beta1') return 'v2beta1';
    }
    return undefined;
  }

  async function dispatch(ctx: Ctx): Promise<void> {
    const r = route(ctx.path);
    const fullPath = ctx.query.size > 0 ? `${ctx.path}?${ctx.query.toString()}` : ctx.path;
    const verb = r.t === 'resource' ? verbOf(ctx.method, r, ctx.query) : undefined;
    const fault = takeFault(ctx.method, fullPath);
    if (fault) {
      const res = r.t === 'resource' ? { group: r.kind.group, resource: r.kind.plural, name: r.name ?? '' } : { group: '', resource: '', name: '' };
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
        if (mode) return send(ctx, 200, aggregatedDiscovery(kinds, true, mode), { contentType: mode === 'v2' ? AGGREGATED_V2 : AGGREGATED_V2BETA1, headers: { Vary: 'Accept' } });
        return send(ctx, 200, apiVersions(new URL(url).host), { headers: { Vary: 'Accept' } });
      }
      case 'apis': {
        const mode = discoveryMode(ctx);
        if (mode) return send(ctx, 200, aggregatedDiscovery(kinds, false, mode), { contentType: mode === 'v2' ? AGGREGATED_V2 : AGGREGATED_V2BETA1, headers: { Vary: 'Accept' } });
        return send(ctx, 200, apiGroupList(kinds), { headers: { Vary: 'Accept' } });
      }
      case 'group': {
        const doc = apiGroupDoc(kinds, r.group);
        if (!doc) throw pathNotFound();
        return send(ctx, 200, doc);
      }
      case 'gv': {
        const doc = apiResourceList(kinds, r.group, r.version);
        if (!doc) throw pathNotFound();
        return send(ctx, 200, doc);
      }
      case 'openapi-v3-index':
        return send(ctx, 200, openApiV3Index(kinds, kindsHash()));
      case 'openapi-v3': {
        const doc = openApiV3(kinds, r.group, r.version);
        if (!doc) throw pathNotFound();
        return send(ctx, 200, doc);
      }
      case 'resource':
        break;
    }
    if (verb === undefined) throw pathNotFound();
    checkDeny(verb, r);
    switch (verb) {
      case 'get':
        return handleGet(ctx, r);
      case 'list':
        return handleList(ctx, r);
      case 'watch':
        return handleWatch(ctx, r);
      case 'create':
        return handleCreate(ctx, r);
      case 'update':
        return handleUpdate(ctx, r);
      case 'patch':
        return handlePatch(ctx, r);
      case 'delete':
        return handleDelete(ctx, r);
      case 'deletecollection':
        return handleDeleteCollection(ctx, r);
    }
  }

  function kindsHash(): string {
    return createHash('sha256').update(JSON.stringify(kinds.map((k) => [k.group, k.version, k.plural]))).digest('hex').slice(0, 32).toUpperCase();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
        log.push({ method, path: u.pathname, query: u.search.replace(/^\?/, ''), status });
      },
    };
    try {
      const auth = req.headers.authorization;
      const open = OPEN_PATHS.some((p) => u.pathname === p || u.pathname.startsWith(`${p}/`));
      if (auth !== undefined ? auth !== `Bearer ${token}` : !open) throw unauthorized();
      await dispatch(ctx);
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

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  };
  const httpServer = createServer(onRequest);
  const tls = opts.tls === false ? undefined : createServingCertificate({
    dns: ['localhost', ...(isIP(host) === 0 ? [host] : [])],
    ips: [...new Set(['127.0.0.1', '::1', ...(isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? [host] : [])])],
  });
  const httpsServer = tls ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, onRequest) : undefined;
  const sockets = new Set<Socket>();
  // One port, two protocols: a TLS ClientHello starts with 0x16, anything else is plain HTTP.
  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const target = httpsServer && first[0] === 0x16 ? httpsServer : httpServer;
      target.emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (err) => reject(new SandboxError('LISTEN_FAILED', `cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`)));
    tcp.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = tcp.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  url = `http://${hostForUrl}:${addr.port}`;
  const httpsUrl = tls ? `https://${hostForUrl}:${addr.port}` : undefined;
  const kubeconfig = (o: KubeconfigOptions = {}) =>
    renderKubeconfig({
      server: o.scheme === 'http' || !httpsUrl ? url : httpsUrl,
      token,
      ...(o.scheme !== 'http' && tls ? { caPem: tls.caPem } : {}),
      ...(o.context ? { context: o.context } : {}),
      ...(o.namespace ? { namespace: o.namespace } : {}),
    });

  let closed: Promise<void> | undefined;
  return {
    url,
    httpsUrl,
    caPem: tls?.caPem,
    token,
    kubeconfigYaml: kubeconfig,
    async writeKubeconfig(path, o = {}) {
      await writeFile(path, kubeconfig(o), { mode: 0o600 });
    },
    registerKind,
    injectFault(f) {
      if (!Number.isInteger(f.status) || f.status < 100 || f.status > 599) throw new SandboxError('INVALID_FAULT', `fault status ${f.status} is not an HTTP status`);
      faults.push({ ...f, remaining: f.count ?? 1 });
    },
    deny(rule) {
      denies.push({ ...rule });
    },
    clearFaults() {
      faults.length = 0;
      denies.length = 0;
    },
    requests: () => log.map((e) => ({ ...e })),
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const stop of [...openWatches]) stop();
        tcp.close(() => resolve());
        httpServer.closeAllConnections();
        httpsServer?.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}
