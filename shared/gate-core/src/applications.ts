/**
 * Which Argo CD Applications follow a pushed branch, and where in each one the revision lives. Pure functions.
 */
import { normalizeRepoUrl } from '@gitops-gate/contracts';

/** The opt-in: an Application names the branch whose verified commits it may be pinned to. */
export const BRANCH_ANNOTATION = 'gitops-gate.io/branch';
export const ANNOTATION_PREFIX = 'gitops-gate.io/';

export interface AppSource {
  repoURL?: string;
  targetRevision?: string;
  [key: string]: unknown;
}

export interface Application {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: { source?: AppSource; sources?: AppSource[]; [key: string]: unknown };
  [key: string]: unknown;
}

/** A place in an Application that tracks the repository: the single `source`, or `sources[index]`. */
export type SourceRef = { kind: 'source' } | { kind: 'sources'; index: number };

export interface TrackingApp {
  app: Application;
  refs: SourceRef[];
}

export function appKey(app: Application): string {
  return `${app.metadata.namespace ?? 'default'}/${app.metadata.name}`;
}

export function readRevision(app: Application, ref: SourceRef): string | undefined {
  return ref.kind === 'source' ? app.spec?.source?.targetRevision : app.spec?.sources?.[ref.index]?.targetRevision;
}

function sameRepo(a: string | undefined, repoUrl: string): boolean {
  return a !== undefined && normalizeRepoUrl(a) === repoUrl;
}

/** Applications that opted in for `branch` and have at least one source pointing at `repoUrl` (normalised). */
export function findTrackingApps(apps: Application[], repoUrl: string, branch: string): TrackingApp[] {
  const want = normalizeRepoUrl(repoUrl);
  const out: TrackingApp[] = [];
  for (const app of apps) {
    if (app.metadata.annotations?.[BRANCH_ANNOTATION] !== branch) continue;
    const refs: SourceRef[] = [];
    // Argo CD ignores `source` when `sources` is set, so only one of the two counts.
    const sources = app.spec?.sources;
    if (Array.isArray(sources) && sources.length > 0) {
      sources.forEach((s, index) => {
        if (sameRepo(s.repoURL, want)) refs.push({ kind: 'sources', index });
      });
    } else if (sameRepo(app.spec?.source?.repoURL, want)) {
      refs.push({ kind: 'source' });
    }
    if (refs.length > 0) out.push({ app, refs });
  }
  return out;
}

/** The same Application with `sha` written into every tracking source; the input is not modified. */
export function withRevision(app: Application, refs: SourceRef[], sha: string): NonNullable<Application['spec']> {
  const spec = structuredClone(app.spec ?? {});
  for (const ref of refs) {
    if (ref.kind === 'source') spec.source = { ...spec.source, targetRevision: sha };
    else if (spec.sources?.[ref.index]) spec.sources[ref.index] = { ...spec.sources[ref.index], targetRevision: sha };
  }
  return spec;
}
