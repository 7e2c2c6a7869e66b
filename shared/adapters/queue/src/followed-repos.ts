/**
 * The followed-repository set in Redis (see gate-core's followed-repos.ts for how the gate computes it): the gate
 * publishes, the receiver and the verifier read. Only the gate writes it.
 */
import type { Redis } from 'ioredis';
import { followedReposKey, followedReposSchema, normalizeRepoUrl, type FollowedRepo, type FollowedRepos } from '@gitops-gate/contracts';

export async function publishFollowedRepos(redis: Redis, prefix: string, repos: FollowedRepo[], now: Date = new Date()): Promise<void> {
  const snapshot: FollowedRepos = { publishedAt: now.toISOString(), repos };
  await redis.set(followedReposKey(prefix), JSON.stringify(snapshot));
}

export interface FollowedRepoReader {
  /**
   * The followed repository for a (normalised) repository URL: null when the gate does not follow it, undefined when
   * no gate has published the set yet (the caller decides: the receiver queues, the verifier waits).
   */
  lookup(repoUrl: string): Promise<FollowedRepo | null | undefined>;
}

/** Reads the published set, cached for `cacheMs` (receiver: one GET per second, not per delivery). */
export function createFollowedRepoReader(redis: Redis, prefix: string, opts: { cacheMs?: number } = {}): FollowedRepoReader {
  const cacheMs = opts.cacheMs ?? 1_000;
  let cached: { at: number; repos: Map<string, FollowedRepo> | undefined } | undefined;
  let inflight: Promise<Map<string, FollowedRepo> | undefined> | undefined;
  async function load(): Promise<Map<string, FollowedRepo> | undefined> {
    const raw = await redis.get(followedReposKey(prefix));
    if (raw === null) return undefined;
    // Written only by the gate; anything unreadable is treated as "not published" (wait), never as "follow all".
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const parsed = followedReposSchema.safeParse(json);
    if (!parsed.success) return undefined;
    return new Map(parsed.data.repos.map((r) => [r.repoUrl, r]));
  }
  return {
    async lookup(repoUrl) {
      if (!cached || Date.now() - cached.at >= cacheMs) {
        inflight ??= load().finally(() => {
          inflight = undefined;
        });
        cached = { at: Date.now(), repos: await inflight };
      }
      if (!cached.repos) return undefined;
      return cached.repos.get(normalizeRepoUrl(repoUrl)) ?? null;
    },
  };
}
