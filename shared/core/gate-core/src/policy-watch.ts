/**
 * What the gate reads of the GatePolicy/ClusterGatePolicy watch (the policies in force, its health) and why a kind
 * cannot be listed or watched. The watch itself (@kubernetes/client-node informers) is @gitops-gate/gate-store's
 * createPolicyWatcher.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { POLICY_GROUP, type CompiledPolicy, type KindInfo, type LivePolicy } from '@gitops-gate/policy';
import { httpStatusOf } from './policy-apps.js';

export interface PolicySet {
  revision: string;
  compiled: CompiledPolicy[];
  /** The objects in force as the API returned them (what the verifiers compile): current or last valid generation. */
  objects: object[];
  /** Never-valid Enforce policies: they refuse what they would select. */
  broken: LivePolicy[];
}

export interface PolicyWatchHealth {
  /** Every kind listed at least once (decisions can use the live set). */
  synced: boolean;
  /** Nothing wrong right now. */
  ok: boolean;
  /** One line per kind that cannot be listed or watched, naming the cause. */
  problems: string[];
}

export interface PolicyWatcher {
  /** Lists and starts watching; never throws: failures are logged, reported by health() and retried with backoff. */
  start(): Promise<void>;
  stop(): Promise<void>;
  current(): PolicySet;
  /** The policies in force; throws POLICIES_NOT_SYNCED until every kind has been listed once. */
  live(): LivePolicy[];
  health(): PolicyWatchHealth;
  /** Recomputes now (e.g. Applications changed, for status.selectedApplications); writes only what changed. */
  resync(): Promise<void>;
}

export class PolicyWatchError extends BaseError<'POLICIES_NOT_SYNCED'> {}

/**
 * Why a kind cannot be listed or watched, for health() and the log. `missing` — the CRD is not installed, so no
 * objects of the kind exist — only when it was never listed: once listed, a 404 is an API server restarting before
 * it serves the CRD, or the CRD being re-applied, and dropping the kind would let weaker policies (or none) decide
 * what its policies enforce. Deleting the CRD deletes its objects, which arrive as delete events first.
 */
export function describeWatchFailure(info: KindInfo, err: unknown, listedBefore: boolean): { problem: string; missing: boolean } {
  const status = httpStatusOf(err);
  const where = `${info.plural}.${POLICY_GROUP}`;
  if (status === 404 && listedBefore) {
    return {
      problem: `${info.kind} list answered 404 after it was listed: keeping the ${info.kind} objects in force until it answers again`,
      missing: false,
    };
  }
  if (status === 404)
    return { problem: `${info.kind} CRD not installed (404 listing ${where}): no ${info.kind} objects are in force`, missing: true };
  if (status === 403) {
    return {
      problem: `forbidden to list/watch ${where} cluster-wide (403): the gate needs the ClusterRole of deploy/base/cluster bound with a ClusterRoleBinding`,
      missing: false,
    };
  }
  return {
    problem: `cannot list/watch ${where}${status ? ` (${status})` : ''}: ${(err as Error | undefined)?.message ?? String(err)}`,
    missing: false,
  };
}
