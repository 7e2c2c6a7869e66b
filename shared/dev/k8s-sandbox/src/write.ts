/** The write verbs: create, update, patch (JSON, merge, apply), delete and deletecollection, with dryRun and fieldValidation. */
import { runValidatingWebhooks } from './admission.js';
import { contentTypeOf, decodeObject, duplicateJsonFields, readBody } from './http-util.js';
import { commitUpdate, deleteObject, prepareCreate, prepareUpdate, type FieldCheck } from './lifecycle.js';
import { clone, jsonPatch, mergePatch, PatchError, type Json } from './patch.js';
import { selection } from './read.js';
import { send, type Ctx } from './respond.js';
import type { ResourceRoute } from './routing.js';
import { apiVersionOf, isObject, namespaceExists, present, resourceKey, type SandboxState } from './state.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  deleteSuccess,
  genericInvalid,
  invalid,
  methodNotAllowed,
  notFound,
  unsupportedMediaType,
} from './status.js';
import type { Obj } from './store.js';

const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const APPLY = 'application/apply-patch+yaml';
const SMP = 'application/strategic-merge-patch+json';
/** What the apiserver lists in its 415 for custom resources; strategic merge patch is for built-in types only. */
const CR_PATCH_TYPES = [JSON_PATCH, MERGE, APPLY];
const BUILTIN_PATCH_TYPES = [JSON_PATCH, MERGE, SMP, APPLY];

function isDryRun(query: URLSearchParams, bodyDryRun?: unknown): boolean {
  const all = query.getAll('dryRun');
  if (all.some((v) => v !== 'All'))
    throw badRequest(`dryRun: Unsupported value: "${all.find((v) => v !== 'All')}": supported values: "All"`);
  return all.length > 0 || (Array.isArray(bodyDryRun) && bodyDryRun.includes('All'));
}

function fieldCheck(ctx: Ctx, jsonBody: Buffer | undefined): FieldCheck {
  const v = ctx.query.get('fieldValidation') ?? '';
  if (v !== '' && v !== 'Strict' && v !== 'Warn' && v !== 'Ignore') {
    throw badRequest(`fieldValidation: Unsupported value: "${v}": supported values: "Ignore", "Warn", "Strict"`);
  }
  const mode = v === '' ? 'Warn' : v;
  const isJson = jsonBody !== undefined && contentTypeOf(ctx.req) !== 'application/yaml';
  return { mode, duplicates: mode !== 'Ignore' && isJson ? duplicateJsonFields(jsonBody.toString('utf8')) : [], warnings: ctx.warnings };
}

function requestBodyObject(ctx: Ctx, body: Buffer): Record<string, unknown> {
  const ct = contentTypeOf(ctx.req);
  if (ct === '' || ct === 'application/json') return decodeObject(body, false);
  if (ct === 'application/yaml') return decodeObject(body, true);
  throw unsupportedMediaType(['application/json', 'application/yaml']);
}

export async function handleCreate(s: SandboxState, ctx: Ctx, r: ResourceRoute): Promise<void> {
  if (r.kind.namespaced && r.namespace === undefined) throw methodNotAllowed(r.kind.group, r.kind.plural, 'create');
  const raw = await readBody(ctx.req);
  const body = requestBodyObject(ctx, raw);
  const fields = fieldCheck(ctx, raw);
  const dryRun = isDryRun(ctx.query);
  if (r.namespace !== undefined && !namespaceExists(s, r.namespace)) throw notFound('', 'namespaces', r.namespace);
  const obj = prepareCreate(s, r.kind, body, r.namespace, fields);
  if (s.store.get(resourceKey(r.kind), obj.metadata.namespace ?? '', obj.metadata.name)) {
    throw alreadyExists(r.kind.group, r.kind.plural, obj.metadata.name);
  }
  // Validating admission runs after defaulting and validation, before the object is stored (as in kube-apiserver).
  await runValidatingWebhooks(s, { kind: r.kind, operation: 'CREATE', object: obj, dryRun, warnings: ctx.warnings });
  if (s.store.get(resourceKey(r.kind), obj.metadata.namespace ?? '', obj.metadata.name))
    throw alreadyExists(r.kind.group, r.kind.plural, obj.metadata.name);
  const out = dryRun ? obj : s.store.commit(resourceKey(r.kind), 'ADDED', obj).object;
  send(ctx, 201, present(r.kind, out));
}

/** A webhook call yields the event loop: another write may have landed meanwhile (the apiserver's storage would 409). */
function stillCurrent(s: SandboxState, r: ResourceRoute, old: Obj): void {
  const now = s.store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
  if (now?.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(r.kind.group, r.kind.plural, r.name ?? '');
}

export function existing(s: SandboxState, r: ResourceRoute): Obj {
  const obj = s.store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
  if (!obj) throw notFound(r.kind.group, r.kind.plural, r.name ?? '');
  return obj;
}

/** The optimistic-concurrency check every update path shares (s.store.Update). */
function checkResourceVersion(r: ResourceRoute, old: Obj, candidate: Record<string, unknown>): void {
  const meta = isObject(candidate['metadata']) ? candidate['metadata'] : {};
  const rv = meta['resourceVersion'];
  if (rv === undefined || rv === null || rv === '') {
    // Custom resources do not allow unconditional updates; the error names the resource, not the kind.
    throw invalid(r.kind.group, r.kind.plural, r.name ?? '', [
      { type: 'FieldValueInvalid', field: 'metadata.resourceVersion', body: 'Invalid value: 0x0: must be specified for an update' },
    ]);
  }
  if ((typeof rv === 'string' ? rv : JSON.stringify(rv)) !== old.metadata.resourceVersion)
    throw conflict(r.kind.group, r.kind.plural, r.name ?? '');
}

function checkName(r: ResourceRoute, candidate: Record<string, unknown>): void {
  const meta = isObject(candidate['metadata']) ? candidate['metadata'] : {};
  if (meta['name'] !== undefined && meta['name'] !== r.name) {
    throw badRequest(
      `the name of the object (${typeof meta['name'] === 'string' ? meta['name'] : JSON.stringify(meta['name'])}) does not match the name on the URL (${r.name ?? ''})`,
    );
  }
  if (r.kind.namespaced && meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== r.namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
}

export async function handleUpdate(s: SandboxState, ctx: Ctx, r: ResourceRoute): Promise<void> {
  const raw = await readBody(ctx.req);
  const body = requestBodyObject(ctx, raw);
  const fields = fieldCheck(ctx, raw);
  const dryRun = isDryRun(ctx.query);
  checkName(r, body);
  const old = existing(s, r);
  checkResourceVersion(r, old, body);
  const next = prepareUpdate(r.kind, old, body, r.sub, fields);
  await runValidatingWebhooks(s, {
    kind: r.kind,
    operation: 'UPDATE',
    object: next,
    oldObject: old,
    sub: r.sub,
    dryRun,
    warnings: ctx.warnings,
  });
  stillCurrent(s, r, old);
  send(ctx, 200, present(r.kind, commitUpdate(s, r.kind, old, next, dryRun)));
}

export async function handlePatch(s: SandboxState, ctx: Ctx, r: ResourceRoute): Promise<void> {
  const ct = contentTypeOf(ctx.req);
  const allowed = r.kind.group === '' ? BUILTIN_PATCH_TYPES : CR_PATCH_TYPES;
  if (!allowed.includes(ct)) throw unsupportedMediaType(allowed);
  const raw = await readBody(ctx.req);
  const dryRun = isDryRun(ctx.query);
  if (ct === APPLY) return handleApply(s, ctx, r, raw, dryRun);
  const fields = fieldCheck(ctx, ct === MERGE ? raw : undefined);
  let patch: unknown;
  try {
    patch = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw badRequest(`error decoding patch: ${(err as Error).message}`);
  }
  const old = existing(s, r);
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
  await runValidatingWebhooks(s, {
    kind: r.kind,
    operation: 'UPDATE',
    object: next,
    oldObject: old,
    sub: r.sub,
    dryRun,
    warnings: ctx.warnings,
  });
  stillCurrent(s, r, old);
  send(ctx, 200, present(r.kind, commitUpdate(s, r.kind, old, next, dryRun)));
}

/**
 * Server-side apply, simplified: creates the object when absent, otherwise merges the applied configuration into the
 * live object (maps merge, lists and scalars are replaced). There is no field ownership: fields dropped from the
 * applied configuration are not removed and there are no apply conflicts.
 */
async function handleApply(s: SandboxState, ctx: Ctx, r: ResourceRoute, raw: Buffer, dryRun: boolean): Promise<void> {
  if (!ctx.query.get('fieldManager')) {
    throw invalid('meta.k8s.io', 'PatchOptions', '', [
      { type: 'FieldValueRequired', field: 'fieldManager', body: 'Required value: is required for apply patch' },
    ]);
  }
  const applied = decodeObject(raw, true);
  const fields = fieldCheck(ctx, undefined);
  checkName(r, applied);
  const live = s.store.get(resourceKey(r.kind), r.namespace ?? '', r.name ?? '');
  if (!live) {
    if (r.namespace !== undefined && !namespaceExists(s, r.namespace)) throw notFound('', 'namespaces', r.namespace);
    const meta = isObject(applied['metadata']) ? applied['metadata'] : {};
    const obj = prepareCreate(s, r.kind, { ...applied, metadata: { ...meta, name: r.name } }, r.namespace, fields);
    await runValidatingWebhooks(s, { kind: r.kind, operation: 'CREATE', object: obj, dryRun, warnings: ctx.warnings });
    const out = dryRun ? obj : s.store.commit(resourceKey(r.kind), 'ADDED', obj).object;
    send(ctx, 201, present(r.kind, out));
    return;
  }
  const merged = applyMerge(live as unknown as Json, applied as unknown as Json) as Record<string, unknown>;
  const appliedMeta = isObject(applied['metadata']) ? applied['metadata'] : {};
  if (appliedMeta['resourceVersion'] === undefined)
    (merged['metadata'] as Record<string, unknown>)['resourceVersion'] = live.metadata.resourceVersion;
  checkResourceVersion(r, live, merged);
  const next = prepareUpdate(r.kind, live, merged, r.sub, fields);
  await runValidatingWebhooks(s, {
    kind: r.kind,
    operation: 'UPDATE',
    object: next,
    oldObject: live,
    sub: r.sub,
    dryRun,
    warnings: ctx.warnings,
  });
  stillCurrent(s, r, live);
  send(ctx, 200, present(r.kind, commitUpdate(s, r.kind, live, next, dryRun)));
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

export async function handleDelete(s: SandboxState, ctx: Ctx, r: ResourceRoute): Promise<void> {
  const options = await deleteOptions(ctx);
  const dryRun = isDryRun(ctx.query, options['dryRun']);
  const old = existing(s, r);
  const pre = isObject(options['preconditions']) ? options['preconditions'] : {};
  if (typeof pre['uid'] === 'string' && pre['uid'] !== old.metadata.uid) {
    throw conflict(
      r.kind.group,
      r.kind.plural,
      r.name ?? '',
      `Precondition failed: UID in precondition: ${pre['uid']}, UID in object meta: ${old.metadata.uid ?? ''}`,
    );
  }
  if (typeof pre['resourceVersion'] === 'string' && pre['resourceVersion'] !== old.metadata.resourceVersion) {
    throw conflict(
      r.kind.group,
      r.kind.plural,
      r.name ?? '',
      `Precondition failed: ResourceVersion in precondition: ${pre['resourceVersion']}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ''}`,
    );
  }
  const { obj, gone } = deleteObject(s, r.kind, old, dryRun);
  // Custom resources answer a completed delete with a Success Status; built-in namespaces return the object.
  if (gone && r.kind.group !== '') send(ctx, 200, deleteSuccess(r.kind.group, r.kind.plural, obj.metadata.name, obj.metadata.uid ?? ''));
  else send(ctx, 200, present(r.kind, obj));
}

export async function handleDeleteCollection(s: SandboxState, ctx: Ctx, r: ResourceRoute): Promise<void> {
  const options = await deleteOptions(ctx);
  const dryRun = isDryRun(ctx.query, options['dryRun']);
  const matches = selection(r, ctx.query);
  const deleted = s.store
    .list(resourceKey(r.kind), r.namespace)
    .filter(matches)
    .map((o) => deleteObject(s, r.kind, o, dryRun).obj);
  send(ctx, 200, {
    apiVersion: apiVersionOf(r.kind),
    kind: `${r.kind.kind}List`,
    metadata: { resourceVersion: String(s.store.currentRv()) },
    items: deleted.map((o) => present(r.kind, o)),
  });
}
