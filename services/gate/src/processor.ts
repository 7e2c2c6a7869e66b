import { UnrecoverableError, type Job } from 'bullmq';
import { gateJob } from '@gitops-gate/contracts';
import type { AppOutcome, Gate } from '@gitops-gate/gate-core';
import { inSpan, type Logger } from '@gitops-gate/telemetry';

/** Gate jobs: verdicts in, decisions out. Transient Kubernetes or lock trouble throws, so BullMQ retries it. */
export function createGateProcessor(gate: Gate, logger: Logger): (job: Job) => Promise<AppOutcome[]> {
  return async (job) => {
    const parsed = gateJob.safeParse(job.data);
    if (!parsed.success) {
      logger.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 3) }, 'malformed gate job');
      throw new UnrecoverableError(`malformed gate job: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    const v = parsed.data;
    if (v.kind === 'image-verdict') {
      return inSpan('gate.image', { 'oci.image': v.image, 'oci.digest': v.digest, 'verify.ok': v.ok }, () => gate.applyImageVerdict(v), v.trace);
    }
    return inSpan('gate.apply', { 'git.sha': v.sha, 'git.branch': v.branch, 'verify.outcome': v.outcome }, () => gate.applyVerdict(v), v.trace);
  };
}
