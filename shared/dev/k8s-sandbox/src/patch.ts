/** RFC 7386 JSON merge patch and RFC 6902 JSON patch over plain JSON values. */
import { BaseError } from '@gitops-gate/contracts/errors';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** 'PATCH_MALFORMED' maps to 400 (the patch document itself is unusable), 'PATCH_NOT_APPLIED' to 422. */
export class PatchError extends BaseError<'PATCH_MALFORMED' | 'PATCH_NOT_APPLIED'> {}

function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: { [k: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

interface Op {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError('PATCH_NOT_APPLIED', `invalid JSON pointer "${p}"`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(token: string, len: number, allowEnd: boolean, path: string): number {
  if (allowEnd && token === '-') return len;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError('PATCH_NOT_APPLIED', `invalid array index in "${path}"`);
  const i = Number(token);
  if (i > len || (!allowEnd && i === len)) {
    throw new PatchError('PATCH_NOT_APPLIED', `array index out of bounds in "${path}"`);
  }
  return i;
}

/** Walks to the container holding the last token; throws when an intermediate is missing. */
function parentOf(doc: Json, tokens: string[], path: string): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length, false, path)] ?? null;
    else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = cur[t] ?? null;
    else throw new PatchError('PATCH_NOT_APPLIED', `doc is missing path: "${path}"`);
  }
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function getAt(doc: Json, path: string): { found: boolean; value: Json } {
  let cur: Json = doc;
  for (const t of parsePointer(path)) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t) || Number(t) >= cur.length) return { found: false, value: null };
      cur = cur[Number(t)] ?? null;
    } else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = cur[t] ?? null;
    else return { found: false, value: null };
  }
  return { found: true, value: cur };
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i] ?? null));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k] ?? null, b[k] ?? null));
  }
  return false;
}

function add(doc: Json, path: string, value: Json): Json {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return clone(value);
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, true, path), 0, clone(value));
  else if (isObject(parent)) parent[key] = clone(value);
  else throw new PatchError('PATCH_NOT_APPLIED', `add operation does not apply: doc is missing path: "${path}"`);
  return doc;
}

function remove(doc: Json, path: string, what = 'remove'): { doc: Json; removed: Json } {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return { doc: null, removed: doc };
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = arrayIndex(key, parent.length, false, path);
    const [removed] = parent.splice(i, 1);
    return { doc, removed: removed ?? null };
  }
  if (isObject(parent) && Object.prototype.hasOwnProperty.call(parent, key)) {
    const removed = parent[key] ?? null;
    delete parent[key];
    return { doc, removed };
  }
  throw new PatchError('PATCH_NOT_APPLIED', `${what} operation does not apply: doc is missing key: ${path}`);
}

function toOps(patch: unknown): Op[] {
  if (!Array.isArray(patch)) {
    throw new PatchError('PATCH_MALFORMED', 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  }
  return patch.map((raw) => {
    if (!isObject(raw)) throw new PatchError('PATCH_MALFORMED', 'json: cannot unmarshal into Go value of type jsonpatch.Operation');
    return raw as unknown as Op;
  });
}

/** Applies an RFC 6902 patch to a copy of `doc`; every failure (including a failed `test`) is a PatchError. */
export function jsonPatch(doc: Json, patch: unknown): Json {
  let out = clone(doc);
  for (const op of toOps(patch)) {
    if (typeof op.path !== 'string') throw new PatchError('PATCH_NOT_APPLIED', `${op.op} operation is missing path`);
    switch (op.op) {
      case 'add':
        if (!('value' in op)) throw new PatchError('PATCH_NOT_APPLIED', 'add operation is missing value');
        out = add(out, op.path, op.value ?? null);
        break;
      case 'remove':
        out = remove(out, op.path).doc;
        break;
      case 'replace': {
        if (!('value' in op)) throw new PatchError('PATCH_NOT_APPLIED', 'replace operation is missing value');
        if (op.path === '') {
          out = clone(op.value ?? null);
          break;
        }
        out = remove(out, op.path, 'replace').doc;
        out = add(out, op.path, op.value ?? null);
        break;
      }
      case 'move': {
        if (typeof op.from !== 'string') throw new PatchError('PATCH_NOT_APPLIED', 'move operation is missing from');
        const r = remove(out, op.from, 'move');
        out = add(r.doc, op.path, r.removed);
        break;
      }
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError('PATCH_NOT_APPLIED', 'copy operation is missing from');
        const src = getAt(out, op.from);
        if (!src.found) throw new PatchError('PATCH_NOT_APPLIED', `copy operation does not apply: doc is missing from path: ${op.from}`);
        out = add(out, op.path, src.value);
        break;
      }
      case 'test': {
        // As kube-apiserver's json-patch: an absent member tests equal to null, but only inside a container that
        // exists; a missing parent fails the test (the gate's preconditions rely on this reading of a pointer).
        parentOf(out, parsePointer(op.path), op.path);
        const at = getAt(out, op.path);
        const expected = op.value ?? null;
        if (!(at.found ? deepEqual(at.value, expected) : expected === null)) {
          throw new PatchError('PATCH_NOT_APPLIED', `testing value ${op.path} failed: test failed`);
        }
        break;
      }
      default:
        throw new PatchError('PATCH_NOT_APPLIED', `Unexpected kind: ${String(op.op)}`);
    }
  }
  return out;
}
