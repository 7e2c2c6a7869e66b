/**
 * The status gitops-gate writes on each policy object (Ready condition, observedGeneration, selectedApplications),
 * through the status subresource with a merge patch. Only changes are written: the write comes back as a watch
 * event, and an API server that prunes or lags must not make the gate write in a loop.
 */
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import type { Logger } from '@gitops-gate/telemetry';
import {
  POLICY_GROUP,
  POLICY_VERSION,
  policyDisplayOf,
  policyIdOf,
  type Condition,
  type KindInfo,
  type PolicyObject,
} from '@gitops-gate/policy';

/** How many Application names status.selectedApplications lists (the count is always complete). */
const SELECTED_NAMES_MAX = 10;

export interface PolicyStatusWriter {
  write(kind: KindInfo, obj: PolicyObject, ok: boolean, reason: string, message: string, selected: string[] | undefined): Promise<void>;
  /** Drops what it remembers of objects no longer listed. */
  retain(seen: ReadonlySet<string>): void;
}

export function createPolicyStatusWriter(opts: { api: CustomObjectsApi; logger: Logger; now: () => Date }): PolicyStatusWriter {
  const { api, now } = opts;
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  /** The status last written per object. */
  const lastWritten = new Map<string, string>();
  return {
    async write(
      kind: KindInfo,
      obj: PolicyObject,
      ok: boolean,
      reason: string,
      message: string,
      selected: string[] | undefined,
    ): Promise<void> {
      const generation = obj.metadata?.generation;
      const prev = obj.status?.conditions?.find((c) => c.type === 'Ready');
      const status = ok ? 'True' : 'False';
      const selectedApplications = selected ? { count: selected.length, names: selected.slice(0, SELECTED_NAMES_MAX) } : undefined;
      const wanted = JSON.stringify({ generation, status, reason, message, selectedApplications });
      const id = policyIdOf(kind, obj);
      // Writing the same status again would trigger another watch event and another write: only write changes.
      const same =
        obj.status?.observedGeneration === generation &&
        prev?.status === status &&
        prev.reason === reason &&
        prev.message === message &&
        (selectedApplications === undefined || JSON.stringify(obj.status?.selectedApplications) === JSON.stringify(selectedApplications));
      if (same || lastWritten.get(id) === wanted) return;
      const condition: Condition = {
        type: 'Ready',
        status,
        reason,
        message,
        observedGeneration: generation,
        lastTransitionTime: prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now().toISOString(),
      };
      const body = {
        status: { observedGeneration: generation, conditions: [condition], ...(selectedApplications ? { selectedApplications } : {}) },
      };
      const name = obj.metadata?.name ?? '';
      try {
        if (kind.scope === 'Namespaced') {
          await api.patchNamespacedCustomObjectStatus(
            {
              group: POLICY_GROUP,
              version: POLICY_VERSION,
              plural: kind.plural,
              namespace: obj.metadata?.namespace ?? 'default',
              name,
              body,
            },
            mergePatch,
          );
        } else {
          await api.patchClusterCustomObjectStatus(
            { group: POLICY_GROUP, version: POLICY_VERSION, plural: kind.plural, name, body },
            mergePatch,
          );
        }
        lastWritten.set(id, wanted);
      } catch (err) {
        opts.logger.warn({ policy: policyDisplayOf(kind, obj), err }, 'policy status not written');
      }
    },
    retain(seen) {
      for (const id of lastWritten.keys()) if (!seen.has(id)) lastWritten.delete(id);
    },
  };
}
