/**
 * Writes gate-core's policyStatusUpdate on each policy object through the status subresource with a merge patch —
 * only changes: the write comes back as a watch event, and an API server that prunes or lags must not make the gate
 * write in a loop.
 */
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import type { Logger } from '@gitops-gate/telemetry';
import { policyStatusUpdate } from '@gitops-gate/gate-core';
import { POLICY_GROUP, POLICY_VERSION, policyDisplayOf, type KindInfo, type PolicyObject } from '@gitops-gate/policy';

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
      const update = policyStatusUpdate(kind, obj, { ok, reason, message, selected }, now);
      if (update.same || lastWritten.get(update.id) === update.wanted) return;
      const body = update.body();
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
        lastWritten.set(update.id, update.wanted);
      } catch (err) {
        opts.logger.warn({ policy: policyDisplayOf(kind, obj), err }, 'policy status not written');
      }
    },
    retain(seen) {
      for (const id of lastWritten.keys()) if (!seen.has(id)) lastWritten.delete(id);
    },
  };
}
