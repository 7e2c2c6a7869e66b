/**
 * Renders the GatePolicy and ClusterGatePolicy CRDs from the one policy model (`gatePolicySpec`), so the API server
 * prunes, defaults and validates the same fields the parser reads. `npm run gen:crds` writes
 * deploy/base/crds/*.yaml; test/deploy/gatepolicy-crd.test.ts fails when the committed files differ.
 */
import { PolicyError } from './errors.js';
import { dump } from 'js-yaml';
import { z } from 'zod';
import { gatePolicySpec } from './policy.js';
import { POLICY_FIELD_DESCRIPTIONS } from './policy-text.js';

export type PolicyCrdScope = 'Namespaced' | 'Cluster';

type Node = Record<string, unknown>;

// Keys a Kubernetes structural schema may carry; anything else zod emits (propertyNames, $schema, format helpers)
// is dropped, and `additionalProperties: false` goes because the API server prunes unknown fields instead.
const KEY_ORDER = [
  'type',
  'format',
  'description',
  'required',
  'enum',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'maxProperties',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'properties',
  'additionalProperties',
  'items',
  'x-kubernetes-validations',
];

// What zod emits that a structural schema does without (the draft marker, record key schemas) or says otherwise
// (`const` becomes a one-value enum).
const DROPPED = new Set(['$schema', 'propertyNames', 'const']);

/**
 * zod's JSON Schema (draft 2020-12) -> a Kubernetes structural schema node. Anything else (anyOf, $ref,
 * exclusiveMinimum, ...) throws naming the field, so a new model construct gets a deliberate CRD translation
 * instead of silently vanishing from the CRD (which would make the API server accept what the parser refuses).
 */
export function toStructural(node: Node, path = 'spec'): Node {
  const unsupported = Object.keys(node).filter((k) => !KEY_ORDER.includes(k) && !DROPPED.has(k));
  if (unsupported.length > 0)
    throw new PolicyError('POLICY_INVALID', `${path}: no structural-schema translation for ${unsupported.join(', ')}`);
  const src: Node = { ...node };
  if ('const' in src) {
    src['enum'] = [src['const']];
    delete src['const'];
  }
  // date-time is a format the API server knows; zod adds its own regexp for it, which would only diverge.
  if (src['format'] === 'date-time') delete src['pattern'];
  else delete src['format'];
  if (src['additionalProperties'] === false) delete src['additionalProperties'];
  const out: Node = {};
  for (const k of KEY_ORDER) {
    const v = src[k];
    if (v === undefined) continue;
    if (k === 'properties')
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, Node>).map(([name, sub]) => [name, toStructural(sub, `${path}.${name}`)]),
      );
    else if (k === 'items') out[k] = toStructural(v as Node, `${path}[]`);
    else if (k === 'additionalProperties' && typeof v === 'object') out[k] = toStructural(v as Node, `${path}{}`);
    else out[k] = v;
  }
  return out;
}

/** The status the gate writes (conditions keyed by type); not part of the policy model. */
const STATUS_SCHEMA: Node = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
    selectedApplications: {
      type: 'object',
      description: POLICY_FIELD_DESCRIPTIONS.selectedApplications,
      properties: {
        count: { type: 'integer', minimum: 0 },
        names: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 317 } },
      },
    },
    conditions: {
      type: 'array',
      maxItems: 16,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
      items: {
        type: 'object',
        required: ['type', 'status'],
        properties: {
          type: { type: 'string', description: 'Ready or Invalid.', maxLength: 316 },
          status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
          reason: { type: 'string', maxLength: 1024 },
          message: { type: 'string', maxLength: 32768 },
          observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
          lastTransitionTime: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
};

/** The openAPIV3Schema both CRDs share. */
export function policyOpenApiSchema(): Node {
  const spec = toStructural(z.toJSONSchema(gatePolicySpec, { io: 'input', unrepresentable: 'throw' }));
  return {
    type: 'object',
    description: 'Signer policy for the commits and images gitops-gate may pin.',
    required: ['spec'],
    properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec, status: STATUS_SCHEMA },
  };
}

const NAMES: Record<PolicyCrdScope, { kind: string; plural: string; singular: string; shortNames: string[]; header: string }> = {
  Namespaced: {
    kind: 'GatePolicy',
    plural: 'gatepolicies',
    singular: 'gatepolicy',
    shortNames: ['gp'],
    header:
      '# GatePolicy: who may sign the commits (and build the images) that gitops-gate pins for a set of Argo CD\n' +
      "# Applications. The same format is accepted by the verifier's POLICY_FILE (YAML or JSON).\n",
  },
  Cluster: {
    kind: 'ClusterGatePolicy',
    plural: 'clustergatepolicies',
    singular: 'clustergatepolicy',
    shortNames: ['cgp'],
    header:
      '# ClusterGatePolicy: a cluster-scoped GatePolicy. A namespaced GatePolicy selects only Applications in its own\n' +
      '# namespace (a tenant boundary); a ClusterGatePolicy (admin RBAC) may select Applications in every namespace.\n' +
      '# Same spec as GatePolicy.\n',
  },
};

export function policyCrd(scope: PolicyCrdScope): Node {
  const n = NAMES[scope];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${n.plural}.gitops-gate.io`,
      labels: { 'app.kubernetes.io/name': 'gitops-gate', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group: 'gitops-gate.io',
      scope,
      names: {
        kind: n.kind,
        listKind: `${n.kind}List`,
        plural: n.plural,
        singular: n.singular,
        shortNames: n.shortNames,
        categories: ['gitops-gate'],
      },
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: policyOpenApiSchema() },
        },
      ],
    },
  };
}

/** The file deploy/base/crds/<singular>.yaml as `npm run gen:crds` writes it. */
export function renderPolicyCrdYaml(scope: PolicyCrdScope): string {
  return (
    `${NAMES[scope].header}` +
    // The header names the model's old path: kept so the deployed CRDs stay byte-identical (now shared/core/policy/src/policy.ts).
    '# GENERATED from the policy model (shared/core/commit-verify/src/policy.ts) by `npm run gen:crds`: do not edit.\n' +
    '# Strings carry maxLength and lists maxItems so the API server can bound the cost of the CEL rules.\n' +
    dump(policyCrd(scope), { lineWidth: 120, noRefs: true })
  );
}

export const POLICY_CRD_FILES: Record<PolicyCrdScope, string> = {
  Namespaced: 'deploy/base/crds/gatepolicy.yaml',
  Cluster: 'deploy/base/crds/clustergatepolicy.yaml',
};
