import { UnrecoverableError, type Job } from 'bullmq';
import { gateJob } from '@gitops-gate/contracts';
import type { AppOutcome, Gate } from '@gitops-gate/gate-core';
import { inSpan, type Logger } from '@gitops-gate/telemetry';

/**
 * Gate jobs: verdicts in, decisions out. Transient Kubernetes or lock trouble throws, so BullMQ retries it.
 * `onOutcomes` sees the recorded decisions (reporting them on GitHub); it must not throw or wait for GitHub.
 */
export function createGateProcessor(
  gate: Gate,
  logger: Logger,
  onOutcomes?: (outcomes: AppOutcome[]) => Promise<void>,
): (job: Job) => Promise<AppOutcome[]> {
  const decided = async (outcomes: Promise<AppOutcome[]>): Promise<AppOutcome[]> => {
    const out = await outcomes;
    if (onOutcomes) await onOutcomes(out);
    return out;
  };
  return async (job) => {
    const parsed = gateJob.safeParse(job.data);
    if (!parsed.success) {
      logger.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 3) }, 'malformed gate job');
      throw new UnrecoverableError(`malformed gate job: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    const v = parsed.data;
    if (v.kind === 'image-verdict') {
      return decided(
        inSpan('gate.image', { 'oci.image': v.image, 'oci.digest': v.digest, 'verify.ok': v.ok }, () => gate.applyImageVerdict(v), v.trace),
      );
    }
    return decided(
      inSpan('gate.apply', { 'git.sha': v.sha, 'git.branch': v.branch, 'verify.outcome': v.outcome }, () => gate.applyVerdict(v), v.trace),
    );
  };
}
