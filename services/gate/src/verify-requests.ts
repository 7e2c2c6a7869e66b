import type { JobsOptions } from 'bullmq';
import { reverifyCommitJob, reverifyImageJob } from '@gitops-gate/contracts/verify-jobs';
import { reconcileJob, type GateDeps, type ReconcileTarget } from '@gitops-gate/gate-core';
import { verifyJobOptions } from '@gitops-gate/queue';
import type { Logger } from '@gitops-gate/telemetry';

/** The one queue operation the gate needs from the verify queue. */
export interface VerifyJobSink {
  add(name: 'commit' | 'image', data: object, opts: JobsOptions): Promise<unknown>;
}

export interface VerifyRequests {
  requestReverify: NonNullable<GateDeps['requestReverify']>;
  requestImageReverify: NonNullable<GateDeps['requestImageReverify']>;
  /** Reconcile's heads, queued like a push delivery. */
  enqueueReconcile: (t: ReconcileTarget) => Promise<void>;
}

/**
 * Verification the gate asks for itself. Each request's job id comes from contracts (per delivery, sha and policy
 * revision; per digest and revision; per reconciled head), so repeated asks coalesce and a result still stale after
 * a request waits for the next policy change instead of looping. `revision` is the live policy revision ('none'
 * without a policy watch).
 */
export function createVerifyRequests(deps: {
  queue: VerifyJobSink;
  revision: () => string;
  retentionSeconds: number;
  /** How long completed verify jobs are kept (COMPLETED_JOB_RETENTION_SECONDS; default an hour). */
  completedJobSeconds?: number;
  logger: Logger;
  now?: () => Date;
}): VerifyRequests {
  const now = deps.now ?? (() => new Date());
  const options = (jobId: string): JobsOptions => ({ ...verifyJobOptions(deps.retentionSeconds, deps.completedJobSeconds), jobId });
  return {
    async requestReverify(verdict, reason) {
      const revision = deps.revision();
      const { data, jobId } = reverifyCommitJob(verdict, revision, now());
      deps.logger.info({ sha: verdict.sha, revision, reason }, 'verification requested again');
      await deps.queue.add('commit', data, options(jobId));
    },
    async requestImageReverify(build, reason) {
      const revision = deps.revision();
      const { data, jobId } = reverifyImageJob(build, revision, now());
      deps.logger.info({ image: build.image, digest: build.digest, revision, reason }, 'image verification requested again');
      await deps.queue.add('image', data, options(jobId));
    },
    async enqueueReconcile(t) {
      const { data, jobId } = reconcileJob(t, now());
      await deps.queue.add('commit', data, options(jobId));
    },
  };
}
