/**
 * The object lifecycle every write path shares (API create/update/patch/apply/delete and the seed): server-set
 * metadata, structural-schema pruning and defaults, validation, generation bumps and finalizer-aware deletion —
 * what the apiserver's generic registry (rest.BeforeCreate/BeforeUpdate, store.Delete) does.
 */
import { randomUUID } from 'node:crypto';
import { clone, deepEqual, type Json } from './patch.js';
import {
  apiVersionOf,
  isObject,
  nameProblems,
  problemToFieldError,
  randomSuffix,
  resourceKey,
  timestamp,
  type SandboxState,
} from './state.js';
import { badRequest, invalid, unknownError } from './status.js';
import type { Obj } from './store.js';
import type { ResourceKind } from './types.js';

/**
 * How a write treats unknown and duplicate fields (`fieldValidation`): Strict refuses with 400, Warn (the server's
 * default) drops them with a Warning header, Ignore drops them silently.
 */
export interface FieldCheck {
  mode: 'Strict' | 'Warn' | 'Ignore';
  /** Keys the request body repeats in one object. */
  duplicates: string[];
  warnings: string[];
}

export function newNamespaceObject(name: string): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

/** Fills server-set metadata on create; throws 4xx/422 Status for what the real create path rejects. */
export function prepareCreate(
  s: SandboxState,
  kind: ResourceKind,
  body: Record<string, unknown>,
  urlNamespace: string | undefined,
  fields?: FieldCheck,
): Obj {
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
    } while (s.store.get(resourceKey(kind), meta.namespace ?? '', meta.name));
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
      throw badRequest(
        `${kind.kind} in version "${kind.version}" cannot be handled as a ${kind.kind}: strict decoding error: ${problems.join(', ')}`,
      );
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
    throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${apiVersionOf(kind)})`);
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
export function prepareUpdate(
  kind: ResourceKind,
  old: Obj,
  candidate: Record<string, unknown>,
  sub: string | undefined,
  fields?: FieldCheck,
): Obj {
  checkTypeMeta(kind, candidate);
  let obj = clone(candidate) as Obj;
  if (!isObject(obj.metadata)) obj.metadata = { name: old.metadata.name };
  if (sub === 'status') {
    obj = { ...clone(old), status: clone(candidate['status'] ?? null) };
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
export function commitUpdate(s: SandboxState, kind: ResourceKind, old: Obj, next: Obj, dryRun: boolean): Obj {
  if (deepEqual(old as unknown as Json, next as unknown as Json)) return old;
  if (dryRun) return next;
  // An update that removes the last finalizer of an object being deleted completes the deletion.
  if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
    return s.store.commit(resourceKey(kind), 'DELETED', next, old).object;
  }
  return s.store.commit(resourceKey(kind), 'MODIFIED', next, old).object;
}

/** Deletes now, or — with finalizers — marks for deletion and waits for whoever owns them to remove them. */
export function deleteObject(s: SandboxState, kind: ResourceKind, old: Obj, dryRun: boolean): { obj: Obj; gone: boolean } {
  if ((old.metadata.finalizers ?? []).length > 0) {
    if (old.metadata.deletionTimestamp) return { obj: old, gone: false };
    const marked = clone(old);
    marked.metadata.deletionTimestamp = timestamp();
    marked.metadata.deletionGracePeriodSeconds = 0;
    if (marked.metadata.generation !== undefined) marked.metadata.generation += 1;
    if (dryRun) return { obj: marked, gone: false };
    return { obj: s.store.commit(resourceKey(kind), 'MODIFIED', marked, old).object, gone: false };
  }
  const last = clone(old);
  if (kind.group === '' && kind.plural === 'namespaces') {
    last['status'] = { phase: 'Terminating' };
    if (!dryRun) {
      // No namespace controller here: the namespace's contents go at once, each with its DELETED event.
      for (const k of s.kinds.filter((x) => x.namespaced)) {
        for (const o of s.store.list(resourceKey(k), old.metadata.name)) {
          s.store.commit(resourceKey(k), 'DELETED', clone(o), o);
        }
      }
    }
  }
  if (dryRun) return { obj: last, gone: true };
  return { obj: s.store.commit(resourceKey(kind), 'DELETED', last, old).object, gone: true };
}
