/**
 * Review (wt-review) attacker tests: 704e301 made every id derived from a sender-chosen delivery id carry the
 * repository (verdict job ids, the gate's pending-image field), but the gate's own re-verification requests still
 * derive their BullMQ job ids from the delivery id (or the digest) alone. BullMQ silently ignores an add whose job
 * id is still retained (verifyJobOptions: completed jobs kept an hour), so the second repository's request is
 * dropped: its verdict stays `deferred-stale-policy` / `wait-images` until reconcile or the retention runs out.
 * These tests fail until the repository (and the image) are part of those ids.
 */
import { describe, expect, it } from 'vitest';
import { verdictJobId } from './index.js';
import { buildCommitVerifyJob, reverifyCommitJob, reverifyImageJob } from './verify-jobs.js';

const SHA = 'a'.repeat(40);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const now = new Date('2026-01-02T03:04:05Z');

function verdictFor(fullName: string, deliveryId: string) {
  const repoUrl = `https://github.com/${fullName}`;
  return { deliveryId, repoUrl, cloneUrl: `${repoUrl}.git`, repoFullName: fullName, branch: 'main', sha: SHA, trace: undefined };
}

describe('attacker: re-verification requests of one repository never stand in for another', () => {
  it("a per-repository secret holder reuses GitHub's delivery id for the same commit in their repository (fork)", () => {
    // org/tool's secret holder sent delivery D (GitHub's id for org/app's push) for the same commit in org/tool: both
    // verdicts exist (their verdict job ids differ since 704e301). A policy change makes the gate ask for both again.
    const victim = reverifyCommitJob(verdictFor('org/app', 'D'), 'rev1', now);
    const attacker = reverifyCommitJob(verdictFor('org/tool', 'D'), 'rev1', now);
    expect(victim.data.repoUrl).not.toBe(attacker.data.repoUrl);
    // Same job id: whichever is queued second is silently dropped by BullMQ (a lost pin until reconcile).
    expect(attacker.jobId).not.toBe(victim.jobId);
  });

  it('an image digest required under two repositories (an attacker-made namespaced policy naming it) gets one request each', () => {
    const victim = reverifyImageJob({ repoUrl: 'https://github.com/org/app', image: 'ghcr.io/org/app', digest: DIGEST }, 'rev1', now);
    const attacker = reverifyImageJob({ repoUrl: 'https://github.com/evil/app', image: 'ghcr.io/org/app', digest: DIGEST }, 'rev1', now);
    expect(attacker.jobId).not.toBe(victim.jobId);
  });

  it('the same digest under two image names (a mirror) gets one request each', () => {
    const a = reverifyImageJob({ repoUrl: 'https://github.com/org/app', image: 'ghcr.io/org/app', digest: DIGEST }, 'rev1', now);
    const b = reverifyImageJob({ repoUrl: 'https://github.com/org/app', image: 'ghcr.io/org/app-mirror', digest: DIGEST }, 'rev1', now);
    expect(b.jobId).not.toBe(a.jobId);
  });
});

describe("attacker: a delivery under a per-repository secret never suppresses GitHub's verdict for the same repository", () => {
  it('same delivery id, repository and commit, another branch: the verdict job ids differ', () => {
    // 704e301 gives the per-repository secret its own claim space (D@org/app), so the receiver queues both GitHub's
    // delivery D (global secret, branch main) and the secret holder's D (branch feature, same head). The verifier
    // then derives the gate job id without the branch (commit-job.ts): the second verdict is dropped by BullMQ.
    const github = buildCommitVerifyJob({
      deliveryId: 'D',
      cloneUrl: 'https://github.com/org/app.git',
      branch: 'main',
      sha: SHA,
      receivedAt: now,
    });
    const squat = buildCommitVerifyJob({
      deliveryId: 'D',
      cloneUrl: 'https://github.com/org/app.git',
      branch: 'feature',
      sha: SHA,
      receivedAt: now,
    });
    const id = (j: typeof github.data) => verdictJobId(j);
    expect(id(squat.data)).not.toBe(id(github.data));
  });
});
