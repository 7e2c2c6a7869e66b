/**
 * Custom resources against a CRD the way the API server treats them on `kubectl apply --validate=strict`, through
 * the sandbox's structural-schema pipeline (one CRD emulator for the sandbox and these tests), plus static checks of
 * the CRD itself.
 */
import { parse } from '@marcbachmann/cel-js';
import { kindFromCrd } from '@gitops-gate/k8s-sandbox';
import type { K8sObject } from './render.js';

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

/**
 * What a real API server does with one custom resource on `kubectl apply` (which sends fieldValidation=Strict): the
 * sandbox's structural-schema pipeline (prune, drop nulls, default, validate, CEL). Returns the stored object (a
 * pruned, defaulted copy), the unknown fields it dropped and the problems (empty = accepted).
 */
export function admitCustomResource(crd: K8sObject, obj: K8sObject): { stored: K8sObject; unknownFields: string[]; errors: string[] } {
  const { schema } = kindFromCrd(crd);
  const stored = structuredClone(obj);
  const unknownFields = schema!.prune(stored);
  schema!.applyDefaults(stored);
  return { stored, unknownFields, errors: schema!.validate(stored) };
}

/** Errors for one custom resource under fieldValidation=Strict (empty = accepted). Applies defaults to `obj` in place. */
export function customResourceErrors(crd: K8sObject, obj: K8sObject): string[] {
  const { stored, unknownFields, errors } = admitCustomResource(crd, obj);
  if (unknownFields.length > 0) return unknownFields.map((f) => `strict decoding error: unknown field "${f}"`);
  Object.assign(obj, stored);
  return errors;
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
