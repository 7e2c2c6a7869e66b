import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { verifyJobId, type VerifyJob } from '@gitops-gate/contracts';
import { verifyJobOptions } from '@gitops-gate/queue';

/** What the receiver needs from the queue; the BullMQ implementation is below, tests use it against real Redis. */
export interface Intake {
  /**
   * Resolves once Redis has the job (or already had it: redeliveries are idempotent by delivery id). `signer` names
   * the per-repository secret the delivery was signed with (absent: the global secret).
   */
  add(job: VerifyJob, signer?: string): Promise<'queued' | 'duplicate'>;
  /** Jobs waiting for a verifier. Cached for a moment: the limit is a safety valve, not an exact count. */
  waiting(): Promise<number>;
  ping(): Promise<void>;
}

/**
 * The Redis key that remembers a delivery id (BullMQ's de-duplication key: `<prefix>:<queue>:de:<delivery id>`).
 * Exported for tests and the README's key table.
 */
export function deliveryKey(queue: Queue, deliveryId: string, signer?: string): string {
  return `${queue.opts.prefix ?? 'bull'}:${queue.name}:de:${claimId(deliveryId, signer)}`;
}

/**
 * The de-duplication claim is per secret: a delivery id is chosen by the sender, so the holder of one repository's
 * secret must not be able to claim an id first and make GitHub's real delivery for another repository a "duplicate"
 * (a lost pin). Deliveries under the global secret keep the bare id; others are `<id>@<repository>` (ids never
 * contain '@', so the two spaces cannot meet). A secret rotation between a delivery and its redelivery can queue it
 * twice, which the verifier and gate absorb idempotently.
 */
export function claimId(deliveryId: string, signer?: string): string {
  return signer === undefined ? deliveryId : `${deliveryId}@${signer}`;
}

// Random per process, then counted: unique across receiver replicas without a CSPRNG call per delivery (which cost
// ~4% of the receiver's CPU under load).
const processTag = randomBytes(4).toString('hex');
let counter = 0;
function nextSuffix(): string {
  counter = (counter + 1) % 0x1000000;
  return `${processTag}${counter.toString(16).padStart(6, '0')}`;
}

/**
 * The intake's one durable write: de-duplication claim and job creation in ONE Redis round trip, inside BullMQ's own
 * add-job script (`addStandardJob`), so the job layout is exactly what BullMQ workers expect.
 *
 * Why BullMQ's `deduplication` option rather than a script of ours: a Lua script cannot EVALSHA another script, and
 * copying BullMQ's add script (and its argument packing) would break silently on a BullMQ upgrade. With
 * `deduplication: { id: deliveryId, ttl }` the add script does `SET <de key> <jobId> PX ttl NX` and stores the job in
 * the same script execution, so a claim without its job cannot exist: the script's first write is the job counter
 * (INCR), so an out-of-memory or connection failure rejects the whole call before the claim, and nothing in between
 * can fail half way. Because the key has a TTL, BullMQ keeps it when the job completes or fails and when retention
 * (removeOnComplete / removeOnFail by age or count) drops the job: a redelivery days later is still recognised.
 * Only an explicit `job.remove()` / `queue.clean()` / obliterate forgets it (operators: don't clean the verify queue by
 * hand; a forgotten delivery is queued again, which the gate absorbs idempotently, it is never lost).
 *
 * The job id carries a random suffix only to tell the two answers apart: the script returns the id of the job that
 * holds the claim, which is ours exactly when this call queued it.
 *
 * Kept as one function so that a `WAIT numreplicas` can follow the write (replica acknowledgement) without touching
 * the rest of the intake.
 */
export async function addOnce(
  queue: Queue,
  job: VerifyJob,
  retentionSeconds: number,
  signer?: string,
  completedSeconds?: number,
): Promise<'queued' | 'duplicate'> {
  const jobId = `${verifyJobId(job.deliveryId)}-${nextSuffix()}`;
  const added = await queue.add(job.kind, job, {
    ...verifyJobOptions(retentionSeconds, completedSeconds),
    jobId,
    deduplication: { id: claimId(job.deliveryId, signer), ttl: retentionSeconds * 1000 },
  });
  return added.id === jobId ? 'queued' : 'duplicate';
}

export function createBullIntake(
  queue: Queue,
  redis: Redis,
  opts: {
    retentionSeconds: number;
    /** How long a completed job is kept (COMPLETED_JOB_RETENTION_SECONDS; default an hour). */
    completedSeconds?: number;
    depthCacheMs?: number;
    /**
     * Runs after the delivery's write and before it is acknowledged (the replication WAIT): a rejection turns the
     * 202 into a 503, and the redelivery is queued again or found a duplicate, so nothing acknowledged can be lost.
     * A duplicate waits too: the first copy may have been written but not yet replicated.
     */
    afterWrite?: () => Promise<void>;
  },
): Intake {
  const depthCacheMs = opts.depthCacheMs ?? 1_000;
  let depth = { value: 0, at: 0 };
  let inflight: Promise<number> | undefined;
  return {
    async add(job, signer) {
      const added = await addOnce(queue, job, opts.retentionSeconds, signer, opts.completedSeconds);
      await opts.afterWrite?.();
      return added;
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
