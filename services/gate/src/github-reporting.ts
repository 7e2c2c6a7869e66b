import type { Redis } from 'ioredis';
import type { Config } from '@gitops-gate/config';
import type { AppOutcome } from '@gitops-gate/gate-core';
import { createReportQueue, createReportWorker, gitHubMode, type GitHubClient } from '@gitops-gate/github';
import { createRedisConnection } from '@gitops-gate/queue';
import type { Logger } from '@gitops-gate/telemetry';
import { createOutcomeReporter } from './outcome-reports.js';

/**
 * Decisions reported on the commit (check runs / commit statuses): queued by the gate, sent by a worker, never awaited
 * by a pin. Without a GitHub client (no App, no token) reporting is off and says so once.
 */
export function createGitHubReporting(
  config: Config,
  github: GitHubClient | undefined,
  redis: Redis,
  logger: Logger,
): { reportOutcomes: (outcomes: AppOutcome[]) => Promise<void>; close(): Promise<void> } {
  const reports = github ? createReportQueue(redis, config.QUEUE_PREFIX) : undefined;
  const worker = github
    ? createReportWorker({
        client: github,
        redis,
        prefix: config.QUEUE_PREFIX,
        uiUrl: config.GATE_UI_URL,
        connection: createRedisConnection(config.redis, 'worker'),
        onError: (err, job) => logger.warn({ err, jobId: job?.id, attempts: job?.attemptsMade }, 'GitHub report failed'),
      })
    : undefined;
  logger.info({ github: gitHubMode(config) }, github ? 'GitHub reporting on' : 'GitHub reporting off (no GitHub App or token)');
  return {
    reportOutcomes: createOutcomeReporter(reports, logger),
    async close() {
      await worker?.close();
      await reports?.close();
    },
  };
}
