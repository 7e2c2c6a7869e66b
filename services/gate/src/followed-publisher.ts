import { normalizeRepoUrl, type FollowedRepo } from '@gitops-gate/contracts';
import { collectFollowedRepos, type Application, type FollowedRepoOptions } from '@gitops-gate/gate-core';
import { GitError } from '@gitops-gate/git';
import type { Logger } from '@gitops-gate/telemetry';

export interface FollowedPublisherDeps {
  /** The opted-in Applications (the informer cache). */
  list(): Promise<Application[]>;
  /** Publishes the set for the receiver and the verifiers. */
  publish(repos: FollowedRepo[]): Promise<void>;
  options: FollowedRepoOptions;
  logger: Logger;
}

export interface FollowedPublisher {
  /** Recomputes the set from the Applications and publishes it; the in-process view changes only on success of the listing. */
  refresh(): Promise<void>;
  /** The followed repository for a URL (any spelling), if followed and not refused. */
  fetchable(url: string): FollowedRepo | undefined;
  /** Refreshes now, then every intervalMs (errors logged). */
  start(intervalMs: number): Promise<void>;
  stop(): void;
}

/**
 * Which repositories may be fetched at all: the opted-in Applications' repoURLs, decided by the gate and published for
 * the receiver (drops other pushes) and the verifiers (fetch only these, from these URLs). Refreshed on a timer from
 * the informer cache: a newly opted-in Application's first push may miss it by that much; reconcile catches it.
 */
export function createFollowedPublisher(deps: FollowedPublisherDeps): FollowedPublisher {
  let now = new Map<string, FollowedRepo>();
  let timer: NodeJS.Timeout | undefined;
  const refresh = async (): Promise<void> => {
    const repos = collectFollowedRepos(await deps.list(), deps.options);
    now = new Map(repos.map((r) => [r.repoUrl, r]));
    await deps.publish(repos);
  };
  const logged = () => refresh().catch((err: unknown) => deps.logger.warn({ err }, 'followed repositories not published'));
  return {
    refresh,
    fetchable(url) {
      const repo = now.get(normalizeRepoUrl(url));
      return repo && !repo.refused ? repo : undefined;
    },
    async start(intervalMs) {
      await logged();
      timer = setInterval(() => void logged(), intervalMs);
      timer.unref();
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * The gate's own ancestry fetches follow the same list: a verdict's cloneUrl (a Redis job) only names which followed
 * repository; the fetch goes to the followed URL, and an unfollowed or refused one is not contacted (fail closed).
 */
export function followedAncestry(
  followed: Pick<FollowedPublisher, 'fetchable'>,
  isAncestor: (fetchUrl: string, ancestor: string, descendant: string) => Promise<boolean>,
): (url: string, ancestor: string, descendant: string) => Promise<boolean> {
  return (url, a, d) => {
    const repo = followed.fetchable(url);
    if (!repo)
      return Promise.reject(new GitError('GIT_NOT_FOLLOWED', `repository ${normalizeRepoUrl(url)} is not followed: not fetched`, false));
    return isAncestor(repo.fetchUrl, a, d);
  };
}
