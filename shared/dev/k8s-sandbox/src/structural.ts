/**
 * A CRD's structural schema applied the way kube-apiserver's apiextensions code does it, in its order:
 *  1. prune: fields the schema does not declare are dropped (and reported, so `fieldValidation=Strict|Warn` can act),
 *     except under `x-kubernetes-preserve-unknown-fields`; at the root only apiVersion, kind, metadata and declared
 *     fields survive, and metadata keeps only ObjectMeta's fields;
 *  2. nulls in fields that are not `nullable` are dropped, then `default`s are written (top-down, also on read);
 *  3. validation: types, enum, required, pattern, lengths, item/property counts, bounds, date-time, list types;
 *  4. only when 3 found nothing: the `x-kubernetes-validations` CEL rules, bottom-up, `self` bound to each value.
 * Problems are worded like the apiserver's (`spec.branches: Required value`, `... in body should match '...'`).
 */
import { evaluate } from '@marcbachmann/cel-js';

export interface SchemaNode {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  minimum?: number;
  maximum?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: Array<{ rule: string; message?: string }>;
  [k: string]: unknown;
}

export interface StructuralSchema {
  readonly root: SchemaNode;
  /** Drops undeclared fields in place; returns their paths (`spec.commits.gitsing`, `metadata.foo`). */
  prune(obj: Record<string, unknown>): string[];
  /** Drops nulls of non-nullable fields and writes defaults, in place (create, update and read). */
  applyDefaults(obj: Record<string, unknown>): void;
  /** Problems of a pruned, defaulted object (empty = valid), schema first, then CEL. */
  validate(obj: unknown): string[];
}

/** ObjectMeta's fields: everything else under metadata is pruned, as the apiserver's ObjectMeta decoding does. */
const OBJECT_META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

type Rec = Record<string, unknown>;

const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

const child = (path: string, key: string) => (path ? `${path}.${key}` : key);

// RFC 3339 date-time, as the apiserver's strfmt checks it.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function pruneNode(node: SchemaNode, value: unknown, path: string, out: string[]): void {
  if (node['x-kubernetes-preserve-unknown-fields']) {
    // Declared fields below still get pruned; the unknown ones at this level stay.
    if (isRec(value))
      for (const [k, sub] of Object.entries(node.properties ?? {})) if (k in value) pruneNode(sub, value[k], child(path, k), out);
    return;
  }
  if (Array.isArray(value)) {
    if (node.items) value.forEach((v, i) => pruneNode(node.items!, v, `${path}[${i}]`, out));
    return;
  }
  if (!isRec(value)) return;
  if (node['x-kubernetes-embedded-resource']) {
    // An embedded object keeps its type and object meta, like the root.
    pruneRoot(node, value, path, out);
    return;
  }
  const add = node.additionalProperties;
  for (const k of Object.keys(value)) {
    const sub = node.properties?.[k] ?? (typeof add === 'object' ? add : add === true ? {} : undefined);
    if (!sub) {
      out.push(child(path, k));
      delete value[k];
    } else if (add === true && !node.properties?.[k]) continue;
    else pruneNode(sub, value[k], typeof add === 'object' && !node.properties?.[k] ? `${path}[${k}]` : child(path, k), out);
  }
}

function pruneRoot(root: SchemaNode, obj: Rec, path: string, out: string[]): void {
  for (const k of Object.keys(obj)) {
    if (k === 'apiVersion' || k === 'kind') continue;
    if (k === 'metadata') {
      const meta = obj[k];
      if (isRec(meta)) {
        for (const mk of Object.keys(meta)) {
          // ObjectMeta decoding reads a null field as an absent one.
          if (meta[mk] === null) delete meta[mk];
          else if (!OBJECT_META_FIELDS.has(mk)) {
            out.push(child(child(path, 'metadata'), mk));
            delete meta[mk];
          }
        }
      }
      continue;
    }
    const sub = root.properties?.[k];
    if (sub) pruneNode(sub, obj[k], child(path, k), out);
    else if (!root['x-kubernetes-preserve-unknown-fields']) {
      out.push(child(path, k));
      delete obj[k];
    }
  }
}

function defaultNode(node: SchemaNode, value: unknown): void {
  if (Array.isArray(value)) {
    if (node.items) for (const v of value) defaultNode(node.items, v);
    return;
  }
  if (!isRec(value)) return;
  for (const [k, sub] of Object.entries(node.properties ?? {})) {
    if (value[k] === null && !sub.nullable) delete value[k];
    if (value[k] === undefined && sub.default !== undefined) value[k] = structuredClone(sub.default);
    if (value[k] !== undefined) defaultNode(sub, value[k]);
  }
  const add = node.additionalProperties;
  if (typeof add === 'object') {
    for (const k of Object.keys(value)) {
      if (node.properties?.[k]) continue;
      if (value[k] === null && !add.nullable) delete value[k];
      else defaultNode(add, value[k]);
    }
  }
}

/** The JSON type name the apiserver prints in type errors (`integer` for whole numbers). */
export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(node: SchemaNode, v: unknown): boolean {
  if (v === null) return node.nullable === true;
  if (node['x-kubernetes-int-or-string']) return typeof v === 'string' || Number.isInteger(v);
  switch (node.type) {
    case 'object':
      return isRec(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

const show = (v: unknown) => JSON.stringify(v) ?? 'null';

function validateNode(node: SchemaNode, v: unknown, path: string, out: string[]): void {
  const at = path || '<root>';
  if (!typeMatches(node, v)) {
    const actual = jsonType(v);
    out.push(`${at}: Invalid value: "${actual}": ${at} in body must be of type ${node.type ?? 'int-or-string'}: "${actual}"`);
    return;
  }
  if (v === null) return;
  if (node.enum && !node.enum.some((e) => e === v)) {
    out.push(`${at}: Unsupported value: ${show(v)}: supported values: ${node.enum.map(show).join(', ')}`);
  }
  if (typeof v === 'string') {
    if (node.maxLength !== undefined && [...v].length > node.maxLength)
      out.push(`${at}: Too long: may not be more than ${node.maxLength} bytes`);
    else if (node.minLength !== undefined && [...v].length < node.minLength) {
      out.push(`${at}: Invalid value: ${show(v)}: ${at} in body should be at least ${node.minLength} chars long`);
    }
    if (node.pattern !== undefined && !new RegExp(node.pattern, 'u').test(v))
      out.push(`${at}: Invalid value: ${show(v)}: ${at} in body should match '${node.pattern}'`);
    if (node.format === 'date-time' && !DATE_TIME.test(v))
      out.push(`${at}: Invalid value: ${show(v)}: ${at} in body must be of type date-time: ${show(v)}`);
  }
  if (typeof v === 'number') {
    if (node.minimum !== undefined && v < node.minimum)
      out.push(`${at}: Invalid value: ${v}: ${at} in body should be greater than or equal to ${node.minimum}`);
    if (node.maximum !== undefined && v > node.maximum)
      out.push(`${at}: Invalid value: ${v}: ${at} in body should be less than or equal to ${node.maximum}`);
  }
  if (Array.isArray(v)) {
    if (node.maxItems !== undefined && v.length > node.maxItems)
      out.push(`${at}: Too many: ${v.length}: must have at most ${node.maxItems} items`);
    if (node.minItems !== undefined && v.length < node.minItems)
      out.push(`${at}: Invalid value: ${v.length}: ${at} in body should have at least ${node.minItems} items`);
    const listType = node['x-kubernetes-list-type'];
    if (listType === 'set' || listType === 'map') {
      const keys = node['x-kubernetes-list-map-keys'] ?? [];
      const seen = new Set<string>();
      v.forEach((item, i) => {
        const key = listType === 'set' ? show(item) : show(keys.map((k) => (isRec(item) ? item[k] : undefined)));
        if (seen.has(key))
          out.push(
            `${at}[${i}]: Duplicate value: ${listType === 'set' ? show(item) : show(Object.fromEntries(keys.map((k) => [k, isRec(item) ? item[k] : undefined])))}`,
          );
        seen.add(key);
      });
    }
    if (node.items) v.forEach((item, i) => validateNode(node.items!, item, `${path}[${i}]`, out));
  }
  if (isRec(v)) {
    const n = Object.keys(v).length;
    if (node.maxProperties !== undefined && n > node.maxProperties)
      out.push(`${at}: Too many: ${n}: must have at most ${node.maxProperties} items`);
    if (node.minProperties !== undefined && n < node.minProperties)
      out.push(`${at}: Invalid value: ${n}: ${at} in body should have at least ${node.minProperties} properties`);
    for (const r of node.required ?? []) if (v[r] === undefined) out.push(`${child(path, r)}: Required value`);
    for (const [k, sub] of Object.entries(node.properties ?? {})) if (v[k] !== undefined) validateNode(sub, v[k], child(path, k), out);
    const add = node.additionalProperties;
    if (typeof add === 'object')
      for (const [k, x] of Object.entries(v)) if (!node.properties?.[k]) validateNode(add, x, `${path}[${k}]`, out);
  }
}

/** Values as CEL sees them in CRD rules: date-time strings are timestamps. */
function toCel(node: SchemaNode, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (node.type === 'string' && node.format === 'date-time' && typeof value === 'string') return new Date(value);
  if (Array.isArray(value)) return value.map((v) => toCel(node.items ?? {}, v));
  if (isRec(value)) {
    const out: Rec = {};
    const add = typeof node.additionalProperties === 'object' ? node.additionalProperties : {};
    for (const [k, v] of Object.entries(value)) out[k] = toCel(node.properties?.[k] ?? add, v);
    return out;
  }
  return value;
}

function celNode(node: SchemaNode, v: unknown, path: string, out: string[]): void {
  if (v === undefined || v === null) return;
  if (isRec(v)) {
    for (const [k, sub] of Object.entries(node.properties ?? {})) celNode(sub, v[k], child(path, k), out);
    const add = node.additionalProperties;
    if (typeof add === 'object') for (const [k, x] of Object.entries(v)) if (!node.properties?.[k]) celNode(add, x, `${path}[${k}]`, out);
  }
  if (Array.isArray(v) && node.items) v.forEach((x, i) => celNode(node.items!, x, `${path}[${i}]`, out));
  const rules = node['x-kubernetes-validations'];
  if (!rules?.length) return;
  const self = toCel(node, v);
  for (const r of rules) {
    let ok: unknown;
    try {
      ok = evaluate(r.rule, { self });
    } catch (err) {
      out.push(`${path || '<root>'}: Invalid value: "${jsonType(v)}": rule evaluation error: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    if (ok !== true) out.push(`${path || '<root>'}: Invalid value: "${jsonType(v)}": ${r.message ?? `failed rule: ${r.rule}`}`);
  }
}

export function createStructuralSchema(root: SchemaNode): StructuralSchema {
  return {
    root,
    prune(obj) {
      const out: string[] = [];
      pruneRoot(root, obj, '', out);
      return out;
    },
    applyDefaults(obj) {
      // metadata is ObjectMeta, never defaulted from the CRD.
      const { metadata: _m, ...props } = root.properties ?? {};
      defaultNode({ ...root, properties: props }, obj);
    },
    validate(obj) {
      const out: string[] = [];
      const { metadata: _m, ...props } = root.properties ?? {};
      const node: SchemaNode = { ...root, properties: props };
      validateNode(node, obj, '', out);
      if (out.length === 0) celNode(node, obj, '', out);
      return out;
    },
  };
}
