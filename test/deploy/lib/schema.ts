/**
 * Offline schema validation of rendered manifests, as close to `kubectl apply --validate=strict` as we can get
 * without an API server:
 *  - types, required fields, enums and formats: the JSON schemas compiled into `kubernetes-models` (Kubernetes
 *    built-ins), `@kubernetes-models/keda` and `@kubernetes-models/argo-cd`;
 *  - unknown (misspelt) fields: the attribute maps of `@kubernetes/client-node`'s generated models (Kubernetes
 *    1.36 OpenAPI), because the kubernetes-models schemas accept additional properties.
 */
import * as k8s from '@kubernetes/client-node';
import type { K8sObject } from './render.js';

/** Third-party API groups we have models for. Anything else is not validated here (and reported as such). */
const CRD_MODEL_PACKAGES: Record<string, string> = {
  'keda.sh': '@kubernetes-models/keda/keda.sh',
  'argoproj.io': '@kubernetes-models/argo-cd/argoproj.io',
};

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

type ModelClass = new (data: unknown) => { validate(): void };

export async function modelClass(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const { group, version } = splitApiVersion(apiVersion);
  let spec: string;
  if (group === '') spec = `kubernetes-models/${version}/${kind}`;
  else if (CRD_MODEL_PACKAGES[group]) spec = `${CRD_MODEL_PACKAGES[group]}/${version}/${kind}`;
  else if (group.endsWith('.k8s.io') || ['apps', 'autoscaling', 'batch', 'policy'].includes(group)) {
    spec = `kubernetes-models/${group}/${version}/${kind}`;
  } else return undefined;
  try {
    const mod = (await import(spec)) as Record<string, ModelClass>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

/** Schema errors of one object (empty = valid); throws if no model exists for its kind. */
export async function schemaErrors(obj: K8sObject): Promise<string[]> {
  const Model = await modelClass(obj.apiVersion, obj.kind);
  if (!Model) throw new Error(`no schema model for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

type AttributeMap = { baseName: string; type: string }[];
const models = k8s as unknown as Record<string, { attributeTypeMap?: AttributeMap } | undefined>;

/** client-node's model name for a built-in kind: apps/v1 Deployment -> V1Deployment. */
export function clientNodeType(apiVersion: string, kind: string): string | undefined {
  const { version } = splitApiVersion(apiVersion);
  const name = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  return models[name]?.attributeTypeMap ? name : undefined;
}

const SCALARS = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

function walk(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined || SCALARS.has(type)) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, arr[1]!, `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, map[1]!, `${path}[${k}]`, out);
    return;
  }
  const attrs = models[type]?.attributeTypeMap;
  if (!attrs || typeof value !== 'object' || Array.isArray(value)) return;
  const known = new Map(attrs.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const t = known.get(k);
    if (t === undefined) {
      out.push(`${path}.${k}: unknown field`);
      continue;
    }
    // JSONSchemaProps.items / additionalProperties are typed `any` (schema or bool / schema or array).
    if (type === 'V1JSONSchemaProps' && (k === 'items' || k === 'additionalProperties') && v && typeof v === 'object' && !Array.isArray(v)) {
      walk(v, 'V1JSONSchemaProps', `${path}.${k}`, out);
      continue;
    }
    walk(v, t, `${path}.${k}`, out);
  }
}

/** Fields that the Kubernetes API does not know (typos, wrong nesting) in a built-in object. */
export function unknownFields(obj: K8sObject): string[] {
  const type = clientNodeType(obj.apiVersion, obj.kind);
  if (!type) throw new Error(`no client-node model for ${obj.apiVersion} ${obj.kind}`);
  const out: string[] = [];
  walk(obj, type, obj.kind, out);
  return out;
}

/** Is this a Kubernetes built-in kind (validated strictly) rather than a custom resource? */
export function isBuiltIn(obj: K8sObject): boolean {
  return clientNodeType(obj.apiVersion, obj.kind) !== undefined;
}

/** Kinds the API server serves cluster-scoped, among those we ship. */
export const CLUSTER_SCOPED = new Set([
  'Namespace',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'ClusterPolicy',
]);
