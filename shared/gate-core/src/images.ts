/**
 * Image requirements: an Application annotated `gitops-gate.io/require-images: ghcr.io/org/app[,…]` is pinned to
 * commit X only when X's commit verdict passes and each required image has a passing verdict whose verified
 * provenance names X as its source commit. Commit and image verdicts arrive in any order; whichever completes the set
 * triggers the pin (a second trigger finds it already pinned: `skip-same`).
 *
 * Race-free without a lock across the two: a commit verdict stores itself as pending *before* looking for images,
 * an image verdict stores itself *before* looking for pending commits, so at least one of them sees the other.
 */
import type { Redis } from 'ioredis';
import type { CommitVerdictJob, ImageVerdictJob } from '@gitops-gate/contracts';
import type { Application } from './applications.js';

export const REQUIRE_IMAGES_ANNOTATION = 'gitops-gate.io/require-images';

export function requiredImages(app: Application): string[] {
  const v = app.metadata.annotations?.[REQUIRE_IMAGES_ANNOTATION];
  return v ? v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) : [];
}

export interface ImageState {
  /** Commit verdicts waiting for images, by commit. */
  addPending(verdict: CommitVerdictJob): Promise<void>;
  pendingFor(sha: string): Promise<CommitVerdictJob[]>;
  recordImage(verdict: ImageVerdictJob): Promise<void>;
  imagesFor(sha: string): Promise<ImageVerdictJob[]>;
}

export function createImageState(redis: Redis, prefix: string, ttlSeconds = 7 * 24 * 3600): ImageState {
  const pendingKey = (sha: string) => `${prefix}:pending-images:${sha}`;
  const imagesKey = (sha: string) => `${prefix}:image-verdicts:${sha}`;
  return {
    async addPending(v) {
      await redis.multi().hset(pendingKey(v.sha), `${v.deliveryId}:${v.branch}`, JSON.stringify(v)).expire(pendingKey(v.sha), ttlSeconds).exec();
    },
    async pendingFor(sha) {
      return Object.values(await redis.hgetall(pendingKey(sha))).map((j) => JSON.parse(j) as CommitVerdictJob);
    },
    async recordImage(v) {
      if (!v.sourceCommit) return;
      await redis.multi().hset(imagesKey(v.sourceCommit), `${v.image}@${v.digest}`, JSON.stringify(v)).expire(imagesKey(v.sourceCommit), ttlSeconds).exec();
    },
    async imagesFor(sha) {
      return Object.values(await redis.hgetall(imagesKey(sha))).map((j) => JSON.parse(j) as ImageVerdictJob);
    },
  };
}

export interface ImageCheck {
  complete: boolean;
  /** What is missing or why, per required image. */
  missing: string[];
  satisfiedBy: string[];
}

/** Does every required image have a passing verdict built from `sha`? */
export function checkImages(required: string[], sha: string, verdicts: ImageVerdictJob[]): ImageCheck {
  const missing: string[] = [];
  const satisfiedBy: string[] = [];
  for (const image of required) {
    const forImage = verdicts.filter((v) => v.image.toLowerCase() === image && v.sourceCommit === sha);
    const good = forImage.find((v) => v.ok);
    if (good) {
      satisfiedBy.push(`${good.image}@${good.digest}`);
      continue;
    }
    const bad = forImage.find((v) => !v.ok);
    missing.push(bad ? `${image}@${bad.digest} built from ${sha.slice(0, 12)} was rejected: ${bad.code}: ${bad.reason ?? ''}`.trim() : `${image}: no verified build from ${sha.slice(0, 12)} yet`);
  }
  return { complete: missing.length === 0, missing, satisfiedBy };
}
