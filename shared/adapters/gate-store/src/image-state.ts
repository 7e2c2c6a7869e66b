/**
 * gate-core's ImageState in Redis: commit verdicts waiting for images (a hash per commit and a sorted index) and the
 * stored image results per build. Which result replaces which is gate-core's rule (supersedesImageResult).
 */
import type { Redis } from 'ioredis';
import { repoTag, type CommitVerdictJob } from '@gitops-gate/contracts';
import { imageBuildOf, imageResultFields, supersedesImageResult, type ImageState, type StoredImageResult } from '@gitops-gate/gate-core';

// Deletes a pending verdict and, with the last one of a commit, the commit's index entry — atomically, so a verdict
// added in between is never left out of the index.
const REMOVE_PENDING = `redis.call('HDEL', KEYS[1], ARGV[1])
local legacy = redis.call('HGET', KEYS[1], ARGV[3])
if legacy and cjson.decode(legacy).repoUrl == ARGV[4] then redis.call('HDEL', KEYS[1], ARGV[3]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1`;

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
      // Also the field as releases before the repository was part of it wrote it (`<delivery>:<branch>`), so an
      // entry left from before an upgrade is settled with its verdict instead of being re-decided until it expires
      // (only when it is this repository's: the delivery id alone is sender-chosen).
      await redis.eval(
        REMOVE_PENDING,
        2,
        pendingKey(v.sha),
        pendingIndex,
        pendingField(v),
        v.sha,
        `${v.deliveryId}:${v.branch}`,
        v.repoUrl,
      );
    },
    async pendingShas() {
      await redis.zremrangebyscore(pendingIndex, '-inf', String(Date.now()));
      return redis.zrange(pendingIndex, '0', '-1');
    },
    async recordImage(v) {
      const build = imageBuildOf(v);
      const stored = await redis.hgetall(resultsKey(build));
      const writes: Record<string, string> = {};
      for (const [field, next] of imageResultFields(v)) {
        const prev = stored[field];
        if (prev === undefined || supersedesImageResult(next, JSON.parse(prev) as StoredImageResult)) writes[field] = JSON.stringify(next);
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
