import { reportJobFromRecord, type ReportEnqueuer } from '@gitops-gate/github';
import type { Logger } from '@gitops-gate/telemetry';

type ReportableRecord = Parameters<typeof reportJobFromRecord>[0];

/**
 * Decisions → report jobs (check runs / commit statuses). Without a GitHub client reporting is off: a no-op.
 * A lost report is not a lost pin: a failed enqueue is logged and never fails the gate job.
 */
export function createOutcomeReporter(
  reports: ReportEnqueuer | undefined,
  logger: Logger,
): (outcomes: { record?: ReportableRecord }[]) => Promise<void> {
  return async (outcomes) => {
    if (!reports) return;
    for (const o of outcomes) {
      const job = o.record ? reportJobFromRecord(o.record) : undefined;
      if (job)
        await reports.enqueue(job).catch((err: unknown) => logger.warn({ err, decisionId: job.decisionId }, 'GitHub report not queued'));
    }
  };
}
