/**
 * The receiver tests' Redis and verify queue: one redis-server per file, a producer connection, and a verify queue
 * under a fresh prefix for every test (no test sees another's jobs). `bind` receives the current values after each
 * setup step, so test files keep plain variables.
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createRedisConnection, createVerifyQueue } from '@gitops-gate/queue';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';

export interface VerifyQueueFixture {
  redis: TestRedis;
  conn: Redis;
  queue: Queue;
  prefix: string;
}

export function useVerifyQueue(bind: (f: VerifyQueueFixture) => void): void {
  const f = {} as VerifyQueueFixture;
  beforeAll(async () => {
    f.redis = await startTestRedis();
    f.conn = createRedisConnection(f.redis.url, 'producer');
    bind(f);
  });
  afterAll(async () => {
    await f.queue?.close();
    f.conn?.disconnect();
    await f.redis?.close();
  });
  beforeEach(async () => {
    await f.queue?.close();
    f.prefix = `t-${randomUUID()}`;
    f.queue = createVerifyQueue(f.conn, f.prefix);
    bind(f);
  });
}

/** Jobs the queue holds in any state. */
export async function jobCount(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
