/**
 * The status gitops-gate writes on each policy object (Ready condition, observedGeneration, selectedApplications),
 * decided: what it should be and whether it needs a write. Only changes are written: the write comes back as a watch
 * event, and an API server that prunes or lags must not make the gate write in a loop. gate-store's
 * createPolicyStatusWriter sends it (status subresource, merge patch).
 */
import { policyIdOf, type Condition, type KindInfo, type PolicyObject } from '@gitops-gate/policy';

/** How many Application names status.selectedApplications lists (the count is always complete). */
export const SELECTED_NAMES_MAX = 10;

export interface PolicyStatusUpdate {
  /** The policy object's id (kind, namespace, name). */
  id: string;
  /** The wanted status in one string: compared with the one last written, so the same is never sent twice. */
  wanted: string;
  /** The object already carries it. */
  same: boolean;
  /** The merge patch of the status subresource (built only when a write is due). */
  body: () => { status: Record<string, unknown> };
}

export function policyStatusUpdate(
  kind: KindInfo,
  obj: PolicyObject,
  outcome: { ok: boolean; reason: string; message: string; selected: string[] | undefined },
  now: () => Date,
): PolicyStatusUpdate {
  const { ok, reason, message, selected } = outcome;
  const generation = obj.metadata?.generation;
  const prev = obj.status?.conditions?.find((c) => c.type === 'Ready');
  const status = ok ? 'True' : 'False';
  const selectedApplications = selected ? { count: selected.length, names: selected.slice(0, SELECTED_NAMES_MAX) } : undefined;
  // Writing the same status again would trigger another watch event and another write: only write changes.
  const same =
    obj.status?.observedGeneration === generation &&
    prev?.status === status &&
    prev.reason === reason &&
    prev.message === message &&
    (selectedApplications === undefined || JSON.stringify(obj.status?.selectedApplications) === JSON.stringify(selectedApplications));
  return {
    id: policyIdOf(kind, obj),
    wanted: JSON.stringify({ generation, status, reason, message, selectedApplications }),
    same,
    body() {
      const condition: Condition = {
        type: 'Ready',
        status,
        reason,
        message,
        observedGeneration: generation,
        lastTransitionTime: prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now().toISOString(),
      };
      return {
        status: { observedGeneration: generation, conditions: [condition], ...(selectedApplications ? { selectedApplications } : {}) },
      };
    },
  };
}
