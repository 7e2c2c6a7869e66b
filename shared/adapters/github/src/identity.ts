/**
 * Repository identity for deliveries. A delivery names its repository by URL and by GitHub's numeric id; only the id
 * survives a rename or transfer, and only the id tells a repository from another created later under the same name.
 * A delivery is queued only when its `repository.id` is the id of the repository the Application follows (resolved
 * once, kept in Redis so every replica and restart compares against the same first answer) and, for an App, when
 * that repository belongs to the delivery's installation.
 */
import type { Redis } from 'ioredis';
import { repoCoordinates, type GitHubClient } from './client.js';

export interface DeliveryIdentity {
  installationId?: number;
  repositoryId?: number;
}

/** The ids a delivery carries (webhook payloads put them at `installation.id` and `repository.id`). */
export function deliveryIdentity(payload: unknown): DeliveryIdentity {
  const p = (payload ?? {}) as { installation?: { id?: unknown }; repository?: { id?: unknown } };
  const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined);
  return { installationId: num(p.installation?.id), repositoryId: num(p.repository?.id) };
}

export type IdentityVerdict =
  | { ok: true }
  /** `status`: 403 = the delivery is not for the followed repository; 503 = GitHub could not be asked (retry). */
  | {
      ok: false;
      status: 403 | 503;
      code: 'NO_REPOSITORY_ID' | 'NO_INSTALLATION' | 'NOT_IN_INSTALLATION' | 'REPOSITORY_ID_MISMATCH' | 'GITHUB_UNAVAILABLE';
      reason: string;
    };

export interface IdentityCheck {
  /** `repoUrl`: the followed repository (normalised URL) the delivery would be queued for. */
  check(repoUrl: string, ids: DeliveryIdentity): Promise<IdentityVerdict>;
}

export function createIdentityCheck(deps: {
  client: GitHubClient;
  redis: Redis;
  prefix: string;
  /** How long an installation's repository list is trusted before it is listed again (repositories get added). */
  installationCacheMs?: number;
  /**
   * Least time between lists forced by an unknown repository id, and how long an installation the App does not have
   * is remembered: deliveries with made-up ids cost no GitHub API call each (the App's rate limit is shared).
   */
  minRefreshMs?: number;
  now?: () => number;
}): IdentityCheck {
  const now = deps.now ?? Date.now;
  const ttl = deps.installationCacheMs ?? 60_000;
  const minRefresh = deps.minRefreshMs ?? 10_000;
  const unknownInstallations = new Map<number, number>();
  const repoIds = new Map<string, number>();
  const installs = new Map<number, { at: number; ids: Set<number> }>();

  async function followedId(repoUrl: string, installationId: number | undefined): Promise<number | undefined> {
    const known = repoIds.get(repoUrl);
    if (known !== undefined) return known;
    const key = `${deps.prefix}:github:repo-id:${repoUrl}`;
    let stored = await deps.redis.get(key);
    if (stored === null) {
      const { owner, repo } = repoCoordinates(repoUrl);
      const res = await deps.client
        .octokit(installationId)
        .request('GET /repos/{owner}/{repo}', { owner, repo })
        .catch((err: unknown) => {
          if ((err as { status?: number }).status === 404) return undefined;
          throw err;
        });
      const id = (res?.data as { id?: number } | undefined)?.id;
      if (id === undefined) return undefined;
      // First answer wins: a repository deleted and re-created under the name later has another id and never
      // replaces it (an operator who means it deletes this key).
      await deps.redis.set(key, String(id), 'NX');
      stored = (await deps.redis.get(key)) ?? String(id);
    }
    const id = Number(stored);
    repoIds.set(repoUrl, id);
    return id;
  }

  async function installationRepos(installationId: number, force: boolean): Promise<Set<number>> {
    const c = installs.get(installationId);
    if (c && (force ? now() - c.at < minRefresh : now() - c.at < ttl)) return c.ids;
    const ids = new Set<number>();
    const octokit = deps.client.octokit(installationId);
    for (let page = 1; page <= 100; page++) {
      const res = await octokit.request('GET /installation/repositories', { per_page: 100, page });
      const data = res.data as { total_count: number; repositories: { id: number }[] };
      for (const r of data.repositories) ids.add(r.id);
      if (data.repositories.length < 100 || ids.size >= data.total_count) break;
    }
    installs.set(installationId, { at: now(), ids });
    return ids;
  }

  return {
    async check(repoUrl, ids) {
      if (ids.repositoryId === undefined) {
        return {
          ok: false,
          status: 403,
          code: 'NO_REPOSITORY_ID',
          reason: 'delivery carries no repository.id: cannot tell which repository it is for',
        };
      }
      let installationId: number | undefined;
      try {
        if (deps.client.mode === 'app') {
          installationId = ids.installationId;
          if (installationId === undefined) {
            return {
              ok: false,
              status: 403,
              code: 'NO_INSTALLATION',
              reason: 'delivery carries no installation.id (App webhooks always do)',
            };
          }
          const deniedAt = unknownInstallations.get(installationId);
          if (deniedAt !== undefined && now() - deniedAt < minRefresh * 6) {
            return {
              ok: false,
              status: 403,
              code: 'NOT_IN_INSTALLATION',
              reason: `installation ${installationId} is not an installation of this App`,
            };
          }
          let repos = await installationRepos(installationId, false);
          // A repository added to the installation since the list was read: list once more before refusing.
          if (!repos.has(ids.repositoryId)) repos = await installationRepos(installationId, true);
          if (!repos.has(ids.repositoryId)) {
            return {
              ok: false,
              status: 403,
              code: 'NOT_IN_INSTALLATION',
              reason: `repository ${ids.repositoryId} is not in installation ${installationId}`,
            };
          }
        }
        const expected = await followedId(repoUrl, installationId);
        if (expected !== ids.repositoryId) {
          return {
            ok: false,
            status: 403,
            code: 'REPOSITORY_ID_MISMATCH',
            reason: `repository.id ${ids.repositoryId} is not the followed repository ${repoUrl} (id ${expected ?? 'not visible to gitops-gate'})`,
          };
        }
        return { ok: true };
      } catch (err) {
        const status = (err as { status?: number }).status;
        // An installation the App does not have, or a revoked one: GitHub answers 404/401 to the token request.
        if (err instanceof Error && (err as { code?: string }).code === 'GITHUB_AUTH_FAILED') {
          const cause = (err.cause as { status?: number } | undefined)?.status;
          if (cause === 404 || cause === 401 || cause === 403) {
            if (installationId !== undefined) unknownInstallations.set(installationId, now());
            return {
              ok: false,
              status: 403,
              code: 'NOT_IN_INSTALLATION',
              reason: `installation ${installationId ?? '?'} is not an installation of this App`,
            };
          }
        }
        return {
          ok: false,
          status: 503,
          code: 'GITHUB_UNAVAILABLE',
          reason: `GitHub API unavailable${status ? ` (${status})` : ''}: repository identity not checked`,
        };
      }
    },
  };
}
