import { Application } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application';
import { argoApplicationSchema } from './argo-schema.js';
import { kindFromCrdFile } from './crd.js';
import { createStructuralSchema, jsonType } from './structural.js';
import type { ResourceKind } from './types.js';

/** The subset of an ajv ErrorObject that @kubernetes-models' ValidationError carries in `.errors`. */
interface SchemaError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

function valueAt(obj: unknown, pointer: string): unknown {
  let cur: unknown = obj;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** `/spec/sources/0/repoURL` -> `spec.sources[0].repoURL`, the way field.Path prints. */
function fieldPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(key)) out += `[${key}]`;
    else out += out ? `.${key}` : key;
  }
  return out;
}

/**
 * Turns JSON-schema errors into the `<field>: <detail>` lines the apiserver's structural-schema validation prints,
 * e.g. `spec.destination: Required value` and
 * `spec.project: Invalid value: "integer": spec.project in body must be of type string: "integer"`.
 */
/** A string parameter of a schema error (ajv joins several types with commas; lists are joined the same way). */
function param(e: SchemaError, name: string): string {
  const v = e.params?.[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : '';
}

export function schemaErrorsToProblems(errors: SchemaError[], obj: unknown): string[] {
  const problems: string[] = [];
  for (const e of errors) {
    const at = e.instancePath ?? '';
    const field = fieldPath(at);
    switch (e.keyword) {
      case 'required': {
        const missing = param(e, 'missingProperty');
        problems.push(`${field ? `${field}.` : ''}${missing}: Required value`);
        break;
      }
      case 'type': {
        const actual = jsonType(valueAt(obj, at));
        const want = param(e, 'type');
        problems.push(`${field}: Invalid value: "${actual}": ${field} in body must be of type ${want}: "${actual}"`);
        break;
      }
      case 'enum': {
        const allowed = (e.params?.['allowedValues'] as unknown[] | undefined) ?? [];
        problems.push(
          `${field}: Unsupported value: ${JSON.stringify(valueAt(obj, at))}: supported values: ${allowed.map((a) => JSON.stringify(a)).join(', ')}`,
        );
        break;
      }
      default:
        problems.push(`${field || '<root>'}: Invalid value: ${JSON.stringify(valueAt(obj, at)) ?? 'null'}: ${e.message ?? 'is invalid'}`);
    }
  }
  return problems;
}

function validateApplication(obj: unknown): string[] {
  try {
    new Application(obj as ConstructorParameters<typeof Application>[0]).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: SchemaError[] }).errors;
    if (Array.isArray(errors)) return schemaErrorsToProblems(errors, obj);
    return [`<root>: Invalid value: ${(err as Error).message}`];
  }
}

/**
 * Argo CD's `applications.argoproj.io` as its CRD declares it (names, printer columns, no status subresource), with
 * its field tree for pruning unknown fields and dropping nulls; types and required fields are checked by the
 * validator `@kubernetes-models/argo-cd` generates from the same CRD.
 */
export const argoApplicationKind: ResourceKind = {
  group: 'argoproj.io',
  version: 'v1alpha1',
  kind: 'Application',
  plural: 'applications',
  singular: 'application',
  namespaced: true,
  shortNames: ['app', 'apps'],
  schema: createStructuralSchema(argoApplicationSchema()),
  validate: validateApplication,
  printerColumns: [
    { name: 'Sync Status', type: 'string', jsonPath: '.status.sync.status' },
    { name: 'Health Status', type: 'string', jsonPath: '.status.health.status' },
    { name: 'Revision', type: 'string', jsonPath: '.status.sync.revision', priority: 10 },
    { name: 'Project', type: 'string', jsonPath: '.spec.project', priority: 10 },
  ],
};

/** Core v1 Namespace; always served so kubectl's namespace handling and `kubectl get ns` work. */
export const namespaceKind: ResourceKind = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  namespaced: false,
  shortNames: ['ns'],
  printerColumns: [
    { name: 'Status', type: 'string', jsonPath: '.status.phase', description: 'The status of the namespace' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};

/** The annotation gitops-gate reads to know which branch an Application tracks. */
export const BRANCH_ANNOTATION = 'gitops-gate.io/branch';

/**
 * A valid Argo CD Application tracking `branch` (targetRevision is the branch until the gate pins a commit SHA),
 * deploying to the in-cluster destination.
 */
export function demoApplication(opts: { name: string; namespace?: string; repoURL: string; branch: string; path?: string }): object {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: {
      name: opts.name,
      namespace: opts.namespace ?? 'argocd',
      annotations: { [BRANCH_ANNOTATION]: opts.branch },
    },
    spec: {
      project: 'default',
      source: { repoURL: opts.repoURL, targetRevision: opts.branch, path: opts.path ?? '.' },
      destination: { server: 'https://kubernetes.default.svc', namespace: opts.name },
    },
  };
}

// The project's own CRD files, read as the apiserver would serve them (this file sits at shared/dev/k8s-sandbox/{src,dist}).
const CRD_DIR = new URL('../../../../deploy/base/crds/', import.meta.url);

/**
 * gitops-gate's GatePolicy, built from its CRD (deploy/base/crds/gatepolicy.yaml): pruning, defaults, validation and
 * CEL rules as a real apiserver applies them. Semantic checks the CRD cannot express (regular expressions, keys) are
 * the gate's job and are reported in the object's status, as in a real cluster.
 */
export const gatePolicyKind: ResourceKind = kindFromCrdFile(new URL('gatepolicy.yaml', CRD_DIR));
/** The cluster-scoped variant (deploy/base/crds/clustergatepolicy.yaml): same spec, selects across namespaces. */
export const clusterGatePolicyKind: ResourceKind = kindFromCrdFile(new URL('clustergatepolicy.yaml', CRD_DIR));
