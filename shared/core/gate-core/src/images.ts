/**
 * Image requirements: an Application annotated `gitops-gate.io/require-images: ghcr.io/org/app[,…]` is pinned to
 * commit X only when X's commit verdict passes and each required image has a build whose verified provenance names X
 * as its source commit and that every live Enforce policy selecting the Application passed (see image-policies.ts). Commit and image verdicts arrive in any order; whichever completes the set
 * triggers the pin (a second trigger finds it already pinned: `skip-same`).
 *
 * Race-free without a lock across the two: a commit verdict stores itself as pending *before* looking for images,
 * an image verdict stores itself *before* looking for pending commits, so at least one of them sees the other.
 * The Redis store of this state is @gitops-gate/gate-store's createImageState; which result wins is decided here.
 */
import { normalizeRepoUrl, type CommitVerdictJob, type ImageVerdictJob } from '@gitops-gate/contracts';
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

/** Should `next` replace `prev` as the result for the same policy object? */
export function supersedesImageResult(next: StoredImageResult, prev: StoredImageResult): boolean {
  // A result for an older generation (a verification that started before the policy changed) never replaces a newer.
  if ((prev.generation ?? 0) > (next.generation ?? 0)) return false;
  if ((prev.generation ?? 0) < (next.generation ?? 0)) return true;
  // Same generation: a rejection always wins (fail closed: it revokes); a pass only over an older verification.
  return !next.ok || next.verifiedAt >= prev.verifiedAt;
}

/**
 * The results an image verdict stores, by field: one per (repository, policy object). Per repository: a verdict
 * computed for another repository neither satisfies nor revokes this one's.
 */
export function imageResultFields(v: ImageVerdictJob): [field: string, result: StoredImageResult][] {
  const repoUrl = normalizeRepoUrl(v.repoUrl);
  // A list, in the verdict's order (not a map): each entry is compared with what is stored, as one write each.
  const out: [string, StoredImageResult][] = [];
  for (const p of v.policies) {
    out.push([
      `${repoUrl} ${policyObjectKey(p)}`,
      {
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
      },
    ]);
  }
  return out;
}

/** The stored build an image verdict is about: `image@digest`, the image lower-cased. */
export function imageBuildOf(v: ImageVerdictJob): string {
  return `${v.image.toLowerCase()}@${v.digest}`;
}
