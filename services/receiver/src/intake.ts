import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { verifyJobId, type VerifyJob } from '@gitops-gate/contracts';
import { verifyJobOptions } from '@gitops-gate/queue';

/** What the receiver needs from the queue; the BullMQ implementation is below, tests use it against real Redis. */
export interface Intake {
  /** Resolves once Redis has the job (or already had it: redeliveries are idempotent by delivery id). */
  add(job: VerifyJob): Promise<'queued' | 'duplicate'>;
  /** Jobs waiting for a verifier. Cached for a moment: the limit is a safety valve, not an exact count. */
  waiting(): Promise<number>;
  ping(): Promise<void>;
}

export function createBullIntake(
  queue: Queue,
  redis: Redis,
  opts: {
    retentionSeconds: number;
    depthCacheMs?: number;
    keyPrefix?: string;
    /**
     * Runs after the delivery's writes and before it is acknowledged (the replication WAIT): a rejection turns the
     * 202 into a 503, and the redelivery is queued again or found a duplicate, so nothing acknowledged can be lost.
     */
    afterWrite?: () => Promise<void>;
  },
): Intake {
  const keyPrefix = `${opts.keyPrefix ?? queue.opts.prefix ?? 'bull'}:delivery:`;
  const jobOptions = verifyJobOptions(opts.retentionSeconds);
  const depthCacheMs = opts.depthCacheMs ?? 1_000;
  let depth = { value: 0, at: 0 };
  let inflight: Promise<number> | undefined;
  return {
    async add(job) {
      const key = `${keyPrefix}${job.deliveryId}`;
      // A delivery seen before (even one whose job was processed and removed long ago) is not queued again.
      // A duplicate is acknowledged too: the first copy may have been written but not yet replicated.
      if ((await redis.exists(key)) === 1) {
        await opts.afterWrite?.();
        return 'duplicate';
      }
      // jobId makes a redelivery racing this one (or a job still in Redis) a no-op inside BullMQ's add script.
      await queue.add(job.kind, job, { ...jobOptions, jobId: verifyJobId(job.deliveryId) });
      // Marked only after the job is stored: a crash in between means a redelivery is queued again (the gate is
      // idempotent), never that a delivery is lost. A failure here has the same harmless effect.
      await redis.set(key, '1', 'EX', opts.retentionSeconds).catch(() => undefined);
      await opts.afterWrite?.();
      return 'queued';
    },
    async waiting() {
      const now = Date.now();
      if (now - depth.at < depthCacheMs) return depth.value;
      inflight ??= queue
        .getWaitingCount()
        .then((n) => {
          depth = { value: n, at: Date.now() };
          return n;
        })
        .finally(() => {
          inflight = undefined;
        });
      return inflight;
    },
    async ping() {
      await redis.ping();
    },
  };
}
