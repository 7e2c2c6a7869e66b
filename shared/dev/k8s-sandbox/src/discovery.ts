/** Discovery documents (legacy APIGroupList/APIResourceList and aggregated APIGroupDiscoveryList v2/v2beta1). */
import type { ResourceKind } from './types.js';

export const CR_VERBS = ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'];

/** Accept/Content-Type media types of aggregated discovery, exactly as client-go compares them. */
export const AGGREGATED_V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
export const AGGREGATED_V2BETA1 = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-gitops-gate-sandbox',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function groupVersions(kinds: ResourceKind[], group: string): string[] {
  return [...new Set(kinds.filter((k) => k.group === group).map((k) => k.version))].sort();
}

function groups(kinds: ResourceKind[]): string[] {
  return [...new Set(kinds.map((k) => k.group).filter((g) => g !== ''))].sort();
}

export function apiVersions(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(kinds: ResourceKind[], name: string): object {
  const versions = groupVersions(kinds, name).map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions, preferredVersion: versions[versions.length - 1] };
}

export function apiGroupList(kinds: ResourceKind[]): object {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups(kinds).map((g) => apiGroup(kinds, g)) };
}

/** `/apis/<group>`, or undefined when nothing is served in that group. */
export function apiGroupDoc(kinds: ResourceKind[], group: string): object | undefined {
  if (!kinds.some((k) => k.group === group)) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(kinds, group) };
}

/** `/api/v1` or `/apis/<group>/<version>`, or undefined when that group/version is not served. */
export function apiResourceList(kinds: ResourceKind[], group: string, version: string): object | undefined {
  const here = kinds.filter((k) => k.group === group && k.version === version);
  if (here.length === 0) return undefined;
  // Each kind is listed, then its status subresource right after it, as kube-apiserver orders them.
  const resources = here.flatMap((k): object[] => [
    {
      name: k.plural,
      singularName: k.singular,
      namespaced: k.namespaced,
      kind: k.kind,
      verbs: CR_VERBS,
      ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
      ...(k.categories?.length ? { categories: k.categories } : {}),
    },
    ...(k.statusSubresource
      ? [{ name: `${k.plural}/status`, singularName: '', namespaced: k.namespaced, kind: k.kind, verbs: ['get', 'patch', 'update'] }]
      : []),
  ]);
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

function aggregatedGroup(kinds: ResourceKind[], group: string): object {
  // Newest version first: client-go takes the first listed version as the preferred one.
  const versions = groupVersions(kinds, group).reverse();
  return {
    metadata: group ? { name: group, creationTimestamp: null } : { creationTimestamp: null },
    versions: versions.map((version) => ({
      version,
      resources: kinds
        .filter((k) => k.group === group && k.version === version)
        .map((k) => ({
          resource: k.plural,
          responseKind: { group, version, kind: k.kind },
          scope: k.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: k.singular,
          verbs: CR_VERBS,
          ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
          ...(k.categories?.length ? { categories: k.categories } : {}),
          ...(k.statusSubresource
            ? {
                subresources: [
                  {
                    subresource: 'status',
                    responseKind: { group, version, kind: k.kind },
                    verbs: ['get', 'patch', 'update'],
                  },
                ],
              }
            : {}),
        })),
      freshness: 'Current',
    })),
  };
}

/** Aggregated discovery for `/api` (core only) or `/apis` (every named group). */
export function aggregatedDiscovery(kinds: ResourceKind[], legacy: boolean, apiVersion: 'v2' | 'v2beta1'): object {
  const items = legacy
    ? kinds.some((k) => k.group === '')
      ? [aggregatedGroup(kinds, '')]
      : []
    : groups(kinds).map((g) => aggregatedGroup(kinds, g));
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${apiVersion}`, metadata: {}, items };
}

/**
 * A minimal OpenAPI v3 document for one group/version. kubectl reads it to decide (a) whether the server validates
 * fields itself (the `fieldValidation` query parameter) and (b) which patch type `kubectl apply` should send: a PATCH
 * that accepts no strategic-merge-patch makes kubectl fall back to a JSON merge patch, which is what happens with
 * real custom resources. Schemas are permissive (x-kubernetes-preserve-unknown-fields).
 */
export function openApiV3(kinds: ResourceKind[], group: string, version: string): object | undefined {
  const here = kinds.filter((k) => k.group === group && k.version === version);
  if (here.length === 0) return undefined;
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const paths: Record<string, object> = {};
  const schemas: Record<string, object> = {};
  const fieldValidation = {
    name: 'fieldValidation',
    in: 'query',
    description: 'Ignore, Warn or Strict',
    schema: { type: 'string', uniqueItems: true },
  };
  for (const k of here) {
    const gvk = [{ group, version, kind: k.kind }];
    const ref = `${group || 'core'}.${version}.${k.kind}`;
    schemas[ref] = {
      type: 'object',
      'x-kubernetes-group-version-kind': gvk,
      'x-kubernetes-preserve-unknown-fields': true,
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
    };
    const body = (types: string[]) => ({
      content: Object.fromEntries(types.map((t) => [t, { schema: { $ref: `#/components/schemas/${ref}` } }])),
      required: true,
    });
    const okResponse = {
      '200': { description: 'OK', content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } },
    };
    const collection = k.namespaced ? `${prefix}/namespaces/{namespace}/${k.plural}` : `${prefix}/${k.plural}`;
    paths[collection] = {
      get: {
        operationId: `list${k.kind}`,
        'x-kubernetes-action': 'list',
        'x-kubernetes-group-version-kind': gvk[0],
        responses: okResponse,
      },
      post: {
        operationId: `create${k.kind}`,
        'x-kubernetes-action': 'post',
        'x-kubernetes-group-version-kind': gvk[0],
        parameters: [fieldValidation],
        requestBody: body(['*/*']),
        responses: okResponse,
      },
    };
    paths[`${collection}/{name}`] = {
      get: { operationId: `read${k.kind}`, 'x-kubernetes-action': 'get', 'x-kubernetes-group-version-kind': gvk[0], responses: okResponse },
      put: {
        operationId: `replace${k.kind}`,
        'x-kubernetes-action': 'put',
        'x-kubernetes-group-version-kind': gvk[0],
        parameters: [fieldValidation],
        requestBody: body(['*/*']),
        responses: okResponse,
      },
      patch: {
        operationId: `patch${k.kind}`,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': gvk[0],
        parameters: [fieldValidation],
        requestBody: body(['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']),
        responses: okResponse,
      },
      delete: {
        operationId: `delete${k.kind}`,
        'x-kubernetes-action': 'delete',
        'x-kubernetes-group-version-kind': gvk[0],
        responses: okResponse,
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion },
    paths,
    components: { schemas },
  };
}

/** `/openapi/v3`: where each group/version's document lives. */
export function openApiV3Index(kinds: ResourceKind[], hash: string): object {
  const paths: Record<string, object> = {};
  for (const k of kinds) {
    const p = k.group ? `apis/${k.group}/${k.version}` : `api/${k.version}`;
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}
