/**
 * Image requirements: an Application annotated `gitops-gate.io/require-images: ghcr.io/org/app[,…]` is pinned to
 * commit X only when X's commit verdict passes and each required image has a build whose verified provenance names X
 * as its source commit and that every live Enforce policy selecting the Application passed (see image-policies.ts). Commit and image verdicts arrive in any order; whichever completes the set
 * triggers the pin (a second trigger finds it already pinned: `skip-same`).
 *
 * Race-free without a lock across the two: a commit verdict stores itself as pending *before* looking for images,
 * an image verdict stores itself *before* looking for pending commits, so at least one of them sees the other.
 */
import type { Redis } from 'ioredis';
import { normalizeRepoUrl, repoTag, type CommitVerdictJob, type ImageVerdictJob } from '@gitops-gate/contracts';
import type { Application } from './applications.js';
import { identityOf, policyObjectKey, type StoredImageResult } from './image-policies.js';

export const REQUIRE_IMAGES_ANNOTATION = 'gitops-gate.io/require-images';

export function requiredImages(app: Application): string[] {
  const v = app.metadata.annotations?.[REQUIRE_IMAGES_ANNOTATION];
  return v
    ? v
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean)
    : [];
}

export interface ImageState {
  /** Commit verdicts waiting for images, by commit. */
  addPending(verdict: CommitVerdictJob): Promise<void>;
  pendingFor(sha: string): Promise<CommitVerdictJob[]>;
  /** The verdict no longer waits (decided, or refused): a later image or policy change need not decide it again. */
  removePending(verdict: CommitVerdictJob): Promise<void>;
  /** Every commit with a verdict waiting for images (re-evaluated when policies change). */
  pendingShas(): Promise<string[]>;
  /**
   * Stores one result per (image digest, repository, policy object): a newer verdict replaces the older one, so a
   * rejection revokes an earlier pass. Call under the image's lock (read-compare-write).
   */
  recordImage(verdict: ImageVerdictJob): Promise<void>;
  /** `image@digest` → stored results, for every build whose verdict named `sha` as its source commit. */
  buildsFor(sha: string): Promise<Map<string, StoredImageResult[]>>;
}

// Deletes a pending verdict and, with the last one of a commit, the commit's index entry — atomically, so a verdict
// added in between is never left out of the index.
const REMOVE_PENDING = `redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1`;

/** Should `next` replace `prev` as the result for the same policy object? */
function supersedes(next: StoredImageResult, prev: StoredImageResult): boolean {
  // A result for an older generation (a verification that started before the policy changed) never replaces a newer.
  if ((prev.generation ?? 0) > (next.generation ?? 0)) return false;
  if ((prev.generation ?? 0) < (next.generation ?? 0)) return true;
  // Same generation: a rejection always wins (fail closed: it revokes); a pass only over an older verification.
  return !next.ok || next.verifiedAt >= prev.verifiedAt;
}

export function createImageState(redis: Redis, prefix: string, ttlSeconds = 7 * 24 * 3600): ImageState {
  const pendingKey = (sha: string) => `${prefix}:pending-images:${sha}`;
  const pendingIndex = `${prefix}:pending-images-index`;
  // The repository is part of the field: a delivery id is sender-chosen, so it alone must not let one repository's verdict
  // overwrite another's pending entry for the same commit.
  const pendingField = (v: CommitVerdictJob) => `${v.deliveryId}:${repoTag(v.repoUrl)}:${v.branch}`;
  const resultsKey = (build: string) => `${prefix}:image-results:${build}`;
  const buildsKey = (sha: string) => `${prefix}:image-builds:${sha}`;
  return {
    async addPending(v) {
      await redis
        .multi()
        .hset(pendingKey(v.sha), pendingField(v), JSON.stringify(v))
        .expire(pendingKey(v.sha), ttlSeconds)
        .zadd(pendingIndex, String(Date.now() + ttlSeconds * 1000), v.sha)
        // Entries past their expiry go here too, not only when pendingShas() reads: the index stays bounded.
        .zremrangebyscore(pendingIndex, '-inf', String(Date.now()))
        .exec();
    },
    async pendingFor(sha) {
      return Object.values(await redis.hgetall(pendingKey(sha))).map((j) => JSON.parse(j) as CommitVerdictJob);
    },
    async removePending(v) {
      await redis.eval(REMOVE_PENDING, 2, pendingKey(v.sha), pendingIndex, pendingField(v), v.sha);
    },
    async pendingShas() {
      await redis.zremrangebyscore(pendingIndex, '-inf', String(Date.now()));
      return redis.zrange(pendingIndex, '0', '-1');
    },
    async recordImage(v) {
      const build = `${v.image.toLowerCase()}@${v.digest}`;
      const repoUrl = normalizeRepoUrl(v.repoUrl);
      const stored = await redis.hgetall(resultsKey(build));
      const writes: Record<string, string> = {};
      for (const p of v.policies) {
        const next: StoredImageResult = {
          ...identityOf(p),
          mode: p.mode,
          ok: p.ok,
          code: p.code,
          reason: p.reason,
          repoUrl,
          image: v.image.toLowerCase(),
          digest: v.digest,
          sourceCommit: v.sourceCommit,
          verifiedAt: v.verifiedAt,
        };
        // Per repository: a verdict computed for another repository neither satisfies nor revokes this one's.
        const field = `${repoUrl} ${policyObjectKey(p)}`;
        const prev = stored[field];
        if (prev === undefined || supersedes(next, JSON.parse(prev) as StoredImageResult)) writes[field] = JSON.stringify(next);
      }
      const tx = redis.multi();
      if (Object.keys(writes).length > 0) tx.hset(resultsKey(build), writes).expire(resultsKey(build), ttlSeconds);
      if (v.sourceCommit) tx.sadd(buildsKey(v.sourceCommit), build).expire(buildsKey(v.sourceCommit), ttlSeconds);
      await tx.exec();
    },
    async buildsFor(sha) {
      const builds = await redis.smembers(buildsKey(sha));
      const out = new Map<string, StoredImageResult[]>();
      for (const build of builds) {
        out.set(
          build,
          Object.values(await redis.hgetall(resultsKey(build))).map((j) => JSON.parse(j) as StoredImageResult),
        );
      }
      return out;
    },
  };
}
