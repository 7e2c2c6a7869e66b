/**
 * The pipeline's Redis keys on a real 3-master Redis Cluster (redis-server --cluster-enabled yes ×3 on loopback).
 * With QUEUE_PREFIX a hash tag (`{gg-…}`), every key the project owns — BullMQ queues, delivery de-duplication,
 * locks, the audit stream and its indexes, the followed-repository set — hashes to one slot, so BullMQ's Lua scripts
 * and the audit MULTI run without CROSSSLOT errors. The same prefix without a hash tag fails: the test shows why the
 * config refuses it.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { Redis as IORedis, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@gitops-gate/config';
import { normalizeRepoUrl, type VerifyJob } from '@gitops-gate/contracts';
import { createAuditTrail, createRedisLock } from '@gitops-gate/gate-store';
import {
  createFollowedRepoReader,
  createRedisConnection,
  createReplicationWait,
  createVerifyQueue,
  publishFollowedRepos,
  ReplicationError,
} from '@gitops-gate/queue';
import { createBullIntake } from '@gitops-gate/receiver';
import { startRedisCluster, type RedisClusterProcesses } from '@gitops-gate/testing';

let cluster: RedisClusterProcesses;
const clients: Redis[] = [];

function connect(prefix: string, role: 'producer' | 'worker' = 'worker'): Redis {
  const config = loadConfig({ REDIS_URL: cluster.url, REDIS_CLUSTER: 'true', QUEUE_PREFIX: prefix });
  const c = createRedisConnection(config.redis, role);
  clients.push(c);
  return c;
}

const job = (deliveryId: string): VerifyJob => ({
  v: 1,
  kind: 'commit',
  deliveryId,
  repoUrl: 'https://github.com/org/app',
  cloneUrl: 'https://github.com/org/app.git',
  repoFullName: 'org/app',
  branch: 'main',
  sha: 'a'.repeat(40),
  forced: false,
  receivedAt: new Date().toISOString(),
});

beforeAll(async () => {
  cluster = await startRedisCluster(3);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await cluster?.close();
});

describe('Redis Cluster (3 masters)', () => {
  it('the config requires a hash-tagged QUEUE_PREFIX on a cluster', () => {
    expect(() => loadConfig({ REDIS_URL: cluster.url, REDIS_CLUSTER: 'true', QUEUE_PREFIX: 'gitops-gate' })).toThrow(ConfigError);
    expect(loadConfig({ REDIS_URL: cluster.url, REDIS_CLUSTER: 'true', QUEUE_PREFIX: '{gitops-gate}' }).redis.cluster).toBe(true);
  });

  it('intake (dedupe + BullMQ add), a worker, locks, the audit chain and the followed set all work with a {hash-tag} prefix', async () => {
    const prefix = `{gg-${randomUUID().slice(0, 6)}}`;
    const redis = connect(prefix, 'producer');
    const queue = createVerifyQueue(redis, prefix);
    const intake = createBullIntake(queue, redis, { retentionSeconds: 60 });
    const id = randomUUID();
    expect(await intake.add(job(id))).toBe('queued');
    expect(await intake.add(job(id))).toBe('duplicate');
    expect(await intake.waiting()).toBe(1);

    const seen: string[] = [];
    const worker = new Worker(queue.name, async (j) => void seen.push((j.data as VerifyJob).deliveryId), {
      connection: connect(prefix),
      prefix,
    });
    await expect.poll(() => seen, { timeout: 10_000 }).toEqual([id]);
    await worker.close();

    const gateRedis = connect(prefix);
    const lock = createRedisLock(gateRedis, prefix, { waitMs: 2_000 });
    expect(await lock.withLock('ns/app', async () => 'locked')).toBe('locked');

    const audit = createAuditTrail(gateRedis, prefix);
    for (let i = 0; i < 3; i++) {
      await audit.record({
        app: 'ns/app',
        sha: String(i).repeat(40),
        deliveryId: randomUUID(),
        action: 'pin',
        reason: 'test',
        verdict: { outcome: 'verified', code: 'OK' },
      } as Parameters<typeof audit.record>[0]);
    }
    const chain = await audit.verifyChain('ns/app');
    expect(chain.problems).toEqual([]);
    expect(chain.checked).toBe(3);

    await publishFollowedRepos(gateRedis, prefix, [
      { repoUrl: normalizeRepoUrl('https://github.com/org/app'), fetchUrl: 'https://github.com/org/app.git', branches: ['main'] },
    ]);
    expect((await createFollowedRepoReader(redis, prefix).lookup('https://github.com/org/app'))?.branches).toEqual(['main']);
    await queue.close();

    // Every key of the run sits on one master (the one owning the hash tag's slot).
    const perNode = await Promise.all(
      cluster.nodes.map(async (n) => {
        const plain = new IORedis(n.port, '127.0.0.1');
        const keys = await plain.keys(`${prefix}*`);
        plain.disconnect();
        return keys.length;
      }),
    );
    expect(perNode.filter((n) => n > 0)).toHaveLength(1);
    expect(Math.max(...perNode)).toBeGreaterThan(5);
  }, 60_000);

  it('the replication WAIT on a cluster (sent to the prefix slot master): no replicas → 0 required under auto, a failure (not a false 202) when 1 is required', async () => {
    const prefix = `{gg-${randomUUID().slice(0, 6)}}`;
    const redis = connect(prefix, 'producer');
    await redis.set(`${prefix}:probe`, '1');
    expect(await createReplicationWait(redis, { replicas: 'auto', timeoutMs: 200, probeMs: 0, hashTag: prefix }).required()).toBe(0);
    const strict = createReplicationWait(redis, { replicas: 1, timeoutMs: 200, hashTag: prefix });
    await expect(strict.wait()).rejects.toBeInstanceOf(ReplicationError);
  });

  it('without a hash tag the same pipeline fails with CROSSSLOT (why the config refuses it)', async () => {
    const prefix = `gg-${randomUUID().slice(0, 6)}`;
    const redis = createRedisConnection({ ...loadConfig({ REDIS_URL: cluster.url }).redis, cluster: true }, 'producer');
    clients.push(redis);
    const audit = createAuditTrail(redis, prefix);
    await expect(
      audit.record({
        app: 'ns/app',
        sha: 'b'.repeat(40),
        deliveryId: randomUUID(),
        action: 'pin',
        reason: 'test',
        verdict: { outcome: 'verified', code: 'OK' },
      } as Parameters<typeof audit.record>[0]),
    ).rejects.toThrow(/CROSSSLOT|same slots/);
  });
});
