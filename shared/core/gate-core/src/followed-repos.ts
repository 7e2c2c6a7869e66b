/**
 * Which repositories the gate may fetch, decided server-side: the repoURLs of the opted-in Applications the gate
 * watches, never a webhook's `clone_url`. The gate publishes the set to Redis; the receiver queues pushes only for
 * these repositories and the verifier fetches only these, from the Application's own URL. Reconcile lists heads from
 * the same set. A repository whose host the git credentials are not for is refused by default (an Application editor
 * must not be able to make the gate fetch from a server of their choosing), or fetched anonymously if configured.
 * Publishing and reading the set: `@gitops-gate/queue` (the receiver and verifier have no Kubernetes client).
 */
import { credentialPrefix, normalizeRepoUrl, type FollowedRepo } from '@gitops-gate/contracts';
import { BRANCH_ANNOTATION, type Application } from './applications.js';

export interface FollowedRepoOptions {
  /**
   * Hosts or URL prefixes the git credentials are for (GIT_CREDENTIAL_HOSTS, the same entries the mirror scopes the
   * token with): a followed repository is fetched only when its fetch URL is under one of them, unless anonymous.
   */
  credentialHosts: string[];
  /** What to do with a followed repository on any other host (GIT_OTHER_HOSTS). */
  otherHosts: 'refuse' | 'anonymous';
}

/**
 * What to fetch for one repository: rebuilt from the normalised URL (host and path as the URL parser read them), never
 * an Application's spelling, so userinfo, `#`, `?` or backslashes that git/curl might parse differently than Node
 * cannot steer the fetch. https, or http when every Application spells it so (a plain-http server); ssh and scp
 * spellings are fetched over https (the verifier has an https token, no SSH key).
 */
function fetchUrlOf(spellings: Set<string>, repoUrl: string): string {
  if (!/^https:\/\//.test(repoUrl)) return repoUrl;
  const allHttp = [...spellings].every((s) => /^http:\/\//i.test(s));
  return `${allHttp ? 'http' : 'https'}${repoUrl.slice('https'.length)}.git`;
}

/** The followed repositories of these Applications (only those opted in with the branch annotation). Pure. */
export function collectFollowedRepos(apps: Application[], opts: FollowedRepoOptions): FollowedRepo[] {
  const allowed = opts.credentialHosts.map(credentialPrefix);
  const byRepo = new Map<string, { spellings: Set<string>; branches: Set<string> }>();
  for (const app of apps) {
    const branch = app.metadata.annotations?.[BRANCH_ANNOTATION];
    if (!branch) continue;
    // Argo CD ignores `source` when `sources` is set: the same rule as findTrackingApps.
    const sources = app.spec?.sources?.length ? app.spec.sources : app.spec?.source ? [app.spec.source] : [];
    for (const s of sources) {
      if (typeof s.repoURL !== 'string' || s.repoURL.trim() === '') continue;
      const repoUrl = normalizeRepoUrl(s.repoURL);
      const entry = byRepo.get(repoUrl) ?? { spellings: new Set<string>(), branches: new Set<string>() };
      entry.spellings.add(s.repoURL.trim());
      entry.branches.add(branch);
      byRepo.set(repoUrl, entry);
    }
  }
  return [...byRepo.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([repoUrl, e]) => {
      const fetchUrl = fetchUrlOf(e.spellings, repoUrl);
      // The prefix check runs on the URL rebuilt from the parsed host and path, so no spelling slips past it.
      const refused =
        opts.otherHosts === 'refuse' && !allowed.some((p) => fetchUrl.startsWith(p))
          ? `repository ${fetchUrl} is not under GIT_CREDENTIAL_HOSTS (${allowed.join(', ') || 'none'}) and GIT_OTHER_HOSTS=refuse`
          : undefined;
      return { repoUrl, fetchUrl, branches: [...e.branches].sort(), ...(refused ? { refused } : {}) };
    });
}
