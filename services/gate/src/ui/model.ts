/**
 * What the pages show about an Application, read from the object the API server returns: the gate's evidence
 * annotations and the revisions actually in the spec. Pure functions.
 */
import { normalizeRepoUrl } from '@gitops-gate/contracts';
import { ANNOTATION_PREFIX, BRANCH_ANNOTATION, type Application, type DecisionRecord } from '@gitops-gate/gate-core';

export type PinState = 'pinned' | 'unpinned' | 'drift';

export interface AppSummary {
  key: string;
  namespace: string;
  name: string;
  /** Undefined when the Application does not opt in. */
  branch: string | undefined;
  /** The sources Argo CD uses (`sources[]` wins over `source`, as in Argo CD). */
  sources: Array<{ repoURL: string; targetRevision: string }>;
  evidence: {
    verifiedSha?: string;
    signer?: string;
    method?: string;
    verifiedAt?: string;
    pinnedAt?: string;
    decisionId?: string;
    deliveryId?: string;
    /** 'audit': pinned by an Audit-mode policy, i.e. as it would have been without the gate; 'enforce' otherwise. */
    mode?: string;
  };
  /**
   * pinned: a source is on the commit the evidence names. unpinned: no verified commit yet. drift: the evidence
   * names a commit no source is on — someone changed targetRevision behind the gate's back, so the evidence
   * no longer explains what is deployed.
   */
  state: PinState;
  /** The sources at the verified commit (pinned), or every source (otherwise). */
  pinnedSources: Array<{ repoURL: string; targetRevision: string }>;
}

const FULL_SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export function isFullSha(value: string | undefined): value is string {
  return value !== undefined && FULL_SHA.test(value);
}

export function summarizeApplication(app: Application): AppSummary {
  const annotations = app.metadata.annotations ?? {};
  const ev = (k: string): string | undefined => {
    const v = annotations[`${ANNOTATION_PREFIX}${k}`];
    return v === undefined || v === '' ? undefined : v;
  };
  const raw =
    Array.isArray(app.spec?.sources) && app.spec.sources.length > 0 ? app.spec.sources : app.spec?.source ? [app.spec.source] : [];
  const sources = raw.map((s) => ({ repoURL: String(s.repoURL ?? ''), targetRevision: String(s.targetRevision ?? '') }));
  const evidence = {
    verifiedSha: ev('verified-sha'),
    signer: ev('signer'),
    method: ev('method'),
    verifiedAt: ev('verified-at'),
    pinnedAt: ev('pinned-at'),
    decisionId: ev('decision-id'),
    deliveryId: ev('delivery-id'),
    mode: ev('mode'),
  };
  const atVerified = evidence.verifiedSha ? sources.filter((s) => s.targetRevision === evidence.verifiedSha) : [];
  const state: PinState = !evidence.verifiedSha ? 'unpinned' : atVerified.length > 0 ? 'pinned' : 'drift';
  const namespace = app.metadata.namespace ?? 'default';
  return {
    key: `${namespace}/${app.metadata.name}`,
    namespace,
    name: app.metadata.name,
    branch: annotations[BRANCH_ANNOTATION],
    sources,
    evidence,
    state,
    pinnedSources: state === 'pinned' ? atVerified : sources,
  };
}

/**
 * The audit record that produced the current pin. The annotation's decision id is tried first; the newest `pin` to
 * the verified commit is the fallback, because the id on the Application is written before the record exists.
 */
export function findPinRecord(summary: AppSummary, history: DecisionRecord[]): DecisionRecord | undefined {
  const sha = summary.evidence.verifiedSha;
  if (!sha) return undefined;
  return (
    history.find((r) => r.id === summary.evidence.decisionId) ??
    history.find((r) => (r.action === 'pin' || r.action === 'audit-pin') && (r.newRevision === sha || r.sha === sha))
  );
}

/** https://github.com/<owner>/<repo>/commit/<sha> for GitHub repositories; nothing is guessed for other hosts. */
export function forgeCommitUrl(repoURL: string, sha: string): string | undefined {
  if (!isFullSha(sha) || !repoURL) return undefined;
  // Only owner/repo made of GitHub's name characters: the URL is built from Application data, so nothing else passes.
  const m = /^https:\/\/github\.com\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(normalizeRepoUrl(repoURL));
  return m ? `https://github.com/${m[1]}/${m[2]}/commit/${sha}` : undefined;
}
