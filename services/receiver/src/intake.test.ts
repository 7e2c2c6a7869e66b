/**
 * The intake's one-round-trip write (issue #15): claim and job creation are one BullMQ script call; a failed call
 * claims nothing, so the redelivery is queued; the job is a plain BullMQ job a BullMQ worker processes.
 */
import { randomUUID } from 'node:crypto';
import { Worker, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { verifyCommitJob, type VerifyJob } from '@gitops-gate/contracts';
import { createRedisConnection } from '@gitops-gate/queue';
import { type TestRedis } from '@gitops-gate/testing';
import { addOnce, createBullIntake, deliveryKey } from './intake.js';
import { useVerifyQueue, jobCount as countJobs } from './test-queue.js';

let redis: TestRedis;
let conn: Redis;
let queue: Queue;
let prefix: string;

function job(deliveryId = randomUUID()): VerifyJob {
  return verifyCommitJob.parse({
    v: 1,
    kind: 'commit',
    deliveryId,
    repoUrl: 'https://github.com/org/app.git',
    cloneUrl: 'https://github.com/org/app.git',
    repoFullName: 'org/app',
    branch: 'main',
    sha: '1234567890abcdef1234567890abcdef12345678',
    receivedAt: new Date().toISOString(),
  });
}

const jobCount = () => countJobs(queue);

useVerifyQueue((f) => ({ redis, conn, queue, prefix } = f));

describe('one round trip intake', () => {
  it('claim and enqueue are one Redis command (the add script); the claim has a TTL', async () => {
    await queue.waitUntilReady();
    // MONITOR shows every command a client sends; commands run inside a script are tagged `lua` and are not round trips.
    const monitor = await createRedisConnection(redis.url, 'monitor').monitor();
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (!source.includes('lua')) sent.push(String(args[0]).toLowerCase());
    });
    const d = job();
    expect(await addOnce(queue, d, 3600)).toBe('queued');
    await conn.ping();
    await new Promise((r) => setTimeout(r, 50));
    monitor.disconnect();
    // EVALSHA, or EVAL the first time this Redis sees the script.
    expect(sent).toHaveLength(2);
    expect(sent[0]).toMatch(/^eval(sha)?$/);
    const ttl = await conn.pttl(deliveryKey(queue, d.deliveryId));
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(await addOnce(queue, d, 3600)).toBe('duplicate');
    expect(await jobCount()).toBe(1);
  });

  it('concurrent redeliveries of one delivery: exactly one queued', async () => {
    const d = job();
    const answers = await Promise.all(Array.from({ length: 20 }, () => addOnce(queue, d, 3600)));
    expect(answers.filter((a) => a === 'queued')).toHaveLength(1);
    expect(await jobCount()).toBe(1);
  });

  it('a failed enqueue claims nothing: the redelivery is queued (never a claimed-but-unqueued delivery)', async () => {
    await queue.waitUntilReady();
    const d = job();
    const admin = createRedisConnection(redis.url, 'admin');
    try {
      // Redis refuses every write: the add script fails at its first write, before the claim.
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      await expect(addOnce(queue, d, 3600)).rejects.toThrow(/OOM|maxmemory/);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
    expect(await conn.exists(deliveryKey(queue, d.deliveryId))).toBe(0);
    expect(await jobCount()).toBe(0);
    expect(await addOnce(queue, d, 3600)).toBe('queued');
    expect(await jobCount()).toBe(1);
  });

  it('a BullMQ worker processes the job with its data; after completion and retention a redelivery is a duplicate', async () => {
    const d = job();
    const intake = createBullIntake(queue, conn, { retentionSeconds: 3600, depthCacheMs: 0 });
    expect(await intake.add(d)).toBe('queued');
    expect(await intake.waiting()).toBe(1);
    const seen: unknown[] = [];
    const worker = new Worker(
      queue.name,
      async (j) => {
        seen.push(j.data);
        return 'done';
      },
      { connection: createRedisConnection(redis.url, 'worker'), prefix },
    );
    await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
    await worker.close();
    expect(seen).toEqual([d]);
    // The claim survives completion (BullMQ keeps a de-duplication key that has a TTL).
    expect(await intake.add(d)).toBe('duplicate');
    expect(await jobCount()).toBe(1);
  });
});
