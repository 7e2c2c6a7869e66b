/**
 * The gate's only way into Kubernetes: list, get and resourceVersion-guarded patches of Applications through
 * @kubernetes/client-node: the pin is an RFC 6902 JSON patch (see pinPatch), other writers may send a merge patch.
 * API errors become KubeError with a code the gate can act on.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Application, JsonPatchOp } from './applications.js';

export const KUBE_ERROR_CODES = ['CONFLICT', 'NOT_FOUND', 'FORBIDDEN', 'INVALID', 'UNAVAILABLE', 'UNAUTHORIZED', 'ERROR'] as const;
export type KubeErrorCode = (typeof KUBE_ERROR_CODES)[number];

export class KubeError extends BaseError<KubeErrorCode> {
  readonly status: number;
  /** Worth retrying later (5xx, 429, network). Conflicts are retried at once by the gate itself. */
  readonly transient: boolean;
  constructor(code: KubeErrorCode, status: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
    this.transient = code === 'UNAVAILABLE';
  }
}

export interface ApplicationStore {
  list(namespaces: string[]): Promise<Application[]>;
  get(namespace: string, name: string): Promise<Application>;
  /**
   * An array is an RFC 6902 JSON patch (application/json-patch+json: a failed `test` op is 422), an object a merge
   * patch (application/merge-patch+json). Either carries metadata.resourceVersion: 409 if the object changed since.
   */
  patch(namespace: string, name: string, patch: Record<string, unknown> | JsonPatchOp[]): Promise<Application>;
}

interface ApplicationList {
  items?: Application[];
}

const GROUP = 'argoproj.io';
const VERSION = 'v1alpha1';
const PLURAL = 'applications';

function toKubeError(err: unknown, what: string): KubeError {
  if (err instanceof ApiException) {
    const status = err.code;
    let message = `${what}: HTTP ${status}`;
    try {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: unknown } | null | undefined;
      if (typeof body?.message === 'string' && body.message !== '') message = `${what}: ${body.message}`;
    } catch {
      // body was not JSON; keep the status line
    }
    const code: KubeErrorCode =
      status === 409 ? 'CONFLICT'
      : status === 404 ? 'NOT_FOUND'
      : status === 403 ? 'FORBIDDEN'
      : status === 401 ? 'UNAUTHORIZED'
      : status === 422 ? 'INVALID'
      : status === 429 || status >= 500 ? 'UNAVAILABLE'
      : 'ERROR';
    return new KubeError(code, status, message);
  }
  // Connection refused, reset, DNS: the API server is away for now.
  return new KubeError('UNAVAILABLE', 0, `${what}: ${(err as Error).message ?? String(err)}`);
}

export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromCluster();
  return kc;
}

export function createKubeApplicationStore(kc: KubeConfig): ApplicationStore {
  const api = kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
  return {
    async list(namespaces) {
      try {
        if (namespaces.length === 0) {
          // The generated client types custom-object lists as `any`: name the shape once here.
          const res = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as ApplicationList;
          return res.items ?? [];
        }
        const lists = (await Promise.all(
          namespaces.map((namespace) => api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })),
        )) as ApplicationList[];
        return lists.flatMap((l) => l.items ?? []);
      } catch (err) {
        throw toKubeError(err, 'list applications');
      }
    },
    async get(namespace, name) {
      try {
        return (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as Application;
      } catch (err) {
        throw toKubeError(err, `get application ${namespace}/${name}`);
      }
    },
    async patch(namespace, name, body) {
      try {
        return (await api.patchNamespacedCustomObject(
          { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body, fieldManager: 'gitops-gate' },
          Array.isArray(body) ? jsonPatch : mergePatch,
        )) as Application;
      } catch (err) {
        throw toKubeError(err, `patch application ${namespace}/${name}`);
      }
    },
  };
}
