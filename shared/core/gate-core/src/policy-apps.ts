/** Policy watcher helpers that read Kubernetes errors and Argo CD Applications (the pure policy model is in @gitops-gate/policy). */
import { normalizeRepoUrl } from '@gitops-gate/contracts';
import { policySelects, type LivePolicy } from '@gitops-gate/policy';
import { BRANCH_ANNOTATION, appKey, type Application } from './applications.js';

export function httpStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown } | undefined;
  for (const v of [e?.code, e?.statusCode, e?.status]) if (typeof v === 'number') return v;
  return undefined;
}

/** Opted-in Applications (by name) that a policy in force selects, for its status. */
export function selectedBy(p: LivePolicy, apps: Application[]): string[] {
  return apps
    .filter((app) => {
      const branch = app.metadata.annotations?.[BRANCH_ANNOTATION];
      if (branch === undefined || !policySelects(p, app)) return false;
      const sources = Array.isArray(app.spec?.sources) && app.spec.sources.length > 0 ? app.spec.sources : [app.spec?.source];
      return sources.some((s) => typeof s?.repoURL === 'string' && p.governs(normalizeRepoUrl(s.repoURL), branch));
    })
    .map(appKey)
    .sort();
}
