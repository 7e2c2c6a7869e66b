/**
 * The gate's port into Kubernetes: list, get and resourceVersion-guarded patches of Applications. The implementation
 * (@kubernetes/client-node) is in @gitops-gate/gate-store; API errors reach the gate as KubeError with a code it can
 * act on, whatever client made the request.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
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

/** The code the gate acts on for an API server's HTTP status (409 re-read, 5xx/429 retry later, the rest recorded). */
export function kubeErrorCodeOf(status: number): KubeErrorCode {
  if (status === 409) return 'CONFLICT';
  if (status === 404) return 'NOT_FOUND';
  if (status === 403) return 'FORBIDDEN';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 422) return 'INVALID';
  if (status === 429 || status >= 500) return 'UNAVAILABLE';
  return 'ERROR';
}

export interface ApplicationStore {
  list(namespaces: string[]): Promise<Application[]>;
  get(namespace: string, name: string): Promise<Application>;
  /**
   * An array is an RFC 6902 JSON patch (application/json-patch+json: a failed `test` op is 422), an object a merge
   * patch (application/merge-patch+json). Either carries metadata.resourceVersion: 409 if the object changed since.
   */
  patch(namespace: string, name: string, patch: Record<string, unknown> | JsonPatchOp[]): Promise<Application>;
  /**
   * The watch cache's copy, without a request (undefined: no cache, not synced, or not in it). Decisions may start
   * from it because every pin carries its resourceVersion: a stale copy is refused by the API server, never written.
   */
  peek?(namespace: string, name: string): Application | undefined;
}
