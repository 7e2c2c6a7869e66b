import type { Application } from '@gitops-gate/gate-core';
import type { Logger } from '@gitops-gate/telemetry';
import type { NamespaceIndex, PolicyCache } from './sources.js';

export interface AdmissionInputs {
  /** Re-reads the policy snapshot and the Applications; re-indexes only when either changed. */
  refresh(): Promise<void>;
  /** True once the gate's snapshot was read: never answer from an empty policy set. */
  ready(): boolean;
  /** Refreshes now, then every intervalMs (errors logged). */
  start(intervalMs: number): Promise<void>;
  stop(): void;
}

/**
 * Policies (the gate's snapshot) and Applications (informer cache) re-read on a timer and indexed per namespace: the
 * hot path does no policy or Kubernetes reads, and a change reaches admission within one interval.
 */
export function createAdmissionInputs(deps: {
  policies: PolicyCache;
  listApplications: () => Promise<Application[]>;
  index: Pick<NamespaceIndex, 'update'>;
  logger: Logger;
}): AdmissionInputs {
  let appsKey = '';
  let ready = false;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async (): Promise<void> => {
    const before = deps.policies.revision();
    await deps.policies.refresh();
    const list = await deps.listApplications();
    const key = list.map((a) => `${a.metadata.namespace}/${a.metadata.name}@${a.metadata.resourceVersion ?? ''}`).join(',');
    if (key !== appsKey || deps.policies.revision() !== before) {
      appsKey = key;
      deps.index.update(deps.policies.current(), list);
    }
    if (deps.policies.revision() !== '') ready = true;
  };
  return {
    refresh,
    ready: () => ready,
    async start(intervalMs) {
      await refresh().catch((err: unknown) => deps.logger.error({ err }, 'admission inputs not read'));
      timer = setInterval(() => void refresh().catch((err: unknown) => deps.logger.warn({ err }, 'admission inputs not read')), intervalMs);
      timer.unref();
    },
    stop: () => clearInterval(timer),
  };
}
