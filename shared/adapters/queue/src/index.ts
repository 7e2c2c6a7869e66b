/**
 * BullMQ glue shared by the services: one way to connect, one set of retry/retention defaults per queue.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_GATE, QUEUE_VERIFY } from '@gitops-gate/contracts';

/**
 * Retries for transient failures (git host, a commit not replicated yet, Rekor, registry, Kubernetes 5xx): 8 attempts,
 * backoff 1, 2, 4 … 64 s (about two minutes in all). A verdict is never a failure, so never retried; the verifier turns
 * transient trouble on the last attempt into a `deferred` verdict rather than letting the job fail unrecorded.
 */
/** Completed jobs kept per queue at most (besides their age, COMPLETED_JOB_RETENTION_SECONDS): a memory bound. */
export const COMPLETED_JOBS_KEPT = 10_000;
const COMPLETED_JOB_SECONDS = 3600;

export const verifyJobOptions = (retentionSeconds: number, completedSeconds = COMPLETED_JOB_SECONDS): JobsOptions => ({
  attempts: 8,
  backoff: { type: 'exponential', delay: 1_000 },
  // Completed jobs are kept (default an hour) for inspection; de-duplication lives in the dedupe key, not in the job.
  removeOnComplete: { age: completedSeconds, count: COMPLETED_JOBS_KEPT },
  removeOnFail: { age: retentionSeconds },
});

export const createGateJobOptions = (completedSeconds = COMPLETED_JOB_SECONDS): JobsOptions => ({
  attempts: 10,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: completedSeconds, count: COMPLETED_JOBS_KEPT },
  removeOnFail: { age: 7 * 24 * 3600 },
});

export const gateJobOptions: JobsOptions = createGateJobOptions();

type ErrorSink = (err: Error) => void;

/** Connection errors reach callers through the failing commands; the listener only keeps BullMQ from printing them. */
function quiet(queue: Queue, onError: ErrorSink | undefined): Queue {
  queue.on('error', onError ?? (() => undefined));
  return queue;
}

export function createVerifyQueue(connection: Redis, prefix: string, onError?: ErrorSink): Queue {
  return quiet(new Queue(QUEUE_VERIFY, { connection, prefix }), onError);
}

export function createGateQueue(connection: Redis, prefix: string, onError?: ErrorSink): Queue {
  return quiet(new Queue(QUEUE_GATE, { connection, prefix }), onError);
}

/** A transient failure: BullMQ retries it with backoff. Anything else that a processor throws is a bug or permanent. */
// Its code is the deferred verification's own (GIT_FETCH_FAILED, SIGSTORE_TRUST_UNAVAILABLE, ...), owned by the
// package that produced it: this package has no code list of its own.
export class TransientError extends BaseError<string> {}

/** Depth and oldest-job age of a queue, for the metrics gauges. */
export function queueGaugeSource(queue: Queue): { name: string; waiting(): Promise<number>; oldestAgeSeconds(): Promise<number> } {
  return {
    name: queue.name,
    waiting: () => queue.getWaitingCount(),
    async oldestAgeSeconds() {
      const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
      return oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0;
    },
  };
}
export * from './followed-repos.js';
export * from './connection.js';
export * from './replication.js';
export * from './service-lifecycle.js';
