/**
 * Validates custom resources against a CRD's openAPIV3Schema the way the API server would on
 * `kubectl apply --validate=strict`: unknown fields rejected, defaults applied, then the x-kubernetes-validations
 * CEL rules evaluated bottom-up with `self` bound to each value (date-time strings become CEL timestamps).
 */
import { evaluate, parse } from '@marcbachmann/cel-js';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { K8sObject } from './render.js';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;

export type Schema = {
  type?: string;
  format?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  [k: string]: unknown;
};

export function storageSchema(crd: K8sObject): Schema {
  const v = crd.spec.versions.find((x: { storage: boolean }) => x.storage);
  return v.schema.openAPIV3Schema;
}

/** Walks every schema node with its JSON path. */
export function eachNode(schema: Schema, visit: (node: Schema, path: string) => void, path = ''): void {
  visit(schema, path || '.');
  for (const [k, p] of Object.entries(schema.properties ?? {})) eachNode(p, visit, `${path}.${k}`);
  if (schema.items) eachNode(schema.items, visit, `${path}[]`);
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') eachNode(schema.additionalProperties, visit, `${path}{}`);
}

/** Strict copy for ajv: objects with `properties` and no `additionalProperties` get `additionalProperties: false`. */
function strict(schema: Schema, path = ''): Schema {
  const out: Schema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, strict(v, `${path}.${k}`)]));
    // metadata is validated by the API server itself, not by the CRD schema.
    if (schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields'] && path !== '.metadata') {
      out.additionalProperties = false;
    }
  }
  if (schema.items) out.items = strict(schema.items, `${path}[]`);
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    out.additionalProperties = strict(schema.additionalProperties, `${path}{}`);
  }
  return out;
}

const compiled = new WeakMap<Schema, ValidateFunction>();

function compile(schema: Schema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true });
    addFormats(ajv);
    fn = ajv.compile(strict(schema));
    compiled.set(schema, fn);
  }
  return fn;
}

/** Values as CEL sees them in CRD validation rules. */
function toCel(schema: Schema, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (schema.type === 'string' && schema.format === 'date-time' && typeof value === 'string') return new Date(value);
  if (schema.type === 'array' && Array.isArray(value)) return value.map((v) => toCel(schema.items ?? {}, v));
  if (schema.type === 'object' && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const sub = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : {});
      out[k] = toCel(sub, v);
    }
    return out;
  }
  return value;
}

function celErrors(schema: Schema, value: unknown, path: string, out: string[]): void {
  if (value === undefined || value === null) return;
  if (schema.properties && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, sub] of Object.entries(schema.properties)) celErrors(sub, (value as Record<string, unknown>)[k], `${path}.${k}`, out);
  }
  if (schema.items && Array.isArray(value)) value.forEach((v, i) => celErrors(schema.items!, v, `${path}[${i}]`, out));
  for (const r of schema['x-kubernetes-validations'] ?? []) {
    const result = evaluate(r.rule, { self: toCel(schema, value) });
    if (result !== true) out.push(`${path || '.'}: ${r.message ?? r.rule}`);
  }
}

/** Errors for one custom resource (empty = accepted). Applies schema defaults to `obj` in place, as the server does. */
export function customResourceErrors(crd: K8sObject, obj: K8sObject): string[] {
  const schema = storageSchema(crd);
  const validate = compile(schema);
  if (!validate(obj)) return (validate.errors ?? []).map((e) => `${e.instancePath || '.'} ${e.message}`);
  const out: string[] = [];
  celErrors(schema, obj, '', out);
  return out;
}

/** Parses every rule of the schema; returns the ones CEL rejects. */
export function unparsableRules(schema: Schema): string[] {
  const bad: string[] = [];
  eachNode(schema, (node, path) => {
    for (const r of node['x-kubernetes-validations'] ?? []) {
      try {
        parse(r.rule);
      } catch (err) {
        bad.push(`${path}: ${r.rule}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  });
  return bad;
}
