/**
 * What a verifier does with one job. Verdicts, accept or reject, are results: the job completes and the verdict goes
 * to the gate. Transient trouble (git host unreachable, a commit not fetchable yet right after a push, Rekor or a
 * registry unavailable) throws, so BullMQ retries it with backoff; on the job's last attempt it becomes a `deferred`
 * verdict naming the cause — never a final rejection, which reconcile would count as covering the commit.
 * Commit jobs: commit-job.ts; image jobs: image-job.ts; dependencies and metrics: verify-context.ts.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { verifyJob } from '@gitops-gate/contracts';
import { inSpan } from '@gitops-gate/telemetry';
import { processCommit } from './commit-job.js';
import { processImage } from './image-job.js';
import { createVerifyContext, type VerifierDeps } from './verify-context.js';

export { FollowedSetMissingError, type VerifierDeps } from './verify-context.js';

/** Whether BullMQ runs the job again if it throws now (as BullMQ decides it: attempts counts the first run). */
function hasAttemptsLeft(job: Job): boolean {
  return job.attemptsMade + 1 < (job.opts?.attempts ?? 1);
}

export function createVerifyProcessor(deps: VerifierDeps): (job: Job) => Promise<unknown> {
  const c = createVerifyContext(deps);
  return async (job: Job) => {
    const parsed = verifyJob.safeParse(job.data);
    if (!parsed.success) {
      // A job that does not match the contract will not match it on retry either.
      deps.logger.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 3) }, 'malformed verify job');
      throw new UnrecoverableError(`malformed verify job: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    const data = parsed.data;
    const lastAttempt = !hasAttemptsLeft(job);
    if (data.kind === 'commit') return processCommit(c, data, lastAttempt);
    return inSpan(
      'verify.image',
      { 'oci.image': data.image, 'oci.digest': data.digest, 'github.delivery': data.deliveryId },
      () => processImage(c, data, lastAttempt),
      data.trace,
    );
  };
}
