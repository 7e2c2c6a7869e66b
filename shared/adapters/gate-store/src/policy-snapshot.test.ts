import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createRedisConnection } from '@gitops-gate/queue';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { publishPolicySnapshot, readPolicySnapshot } from './policy-snapshot.js';

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedisConnection(server.url, 'worker');
});
afterAll(async () => {
  redis.disconnect();
  await server.close();
});

describe('policy snapshot', () => {
  it('reads back what was published; nothing before the first publication', async () => {
    const prefix = `ps-${randomUUID().slice(0, 8)}`;
    expect(await readPolicySnapshot(redis, prefix)).toEqual([]);
    const objects = [{ kind: 'GatePolicy', metadata: { name: 'shop', uid: 'u1' } }];
    await publishPolicySnapshot(redis, prefix, { revision: 'r1', compiled: [], objects, broken: [] });
    expect(JSON.parse((await redis.get(policySnapshotKey(prefix)))!)).toEqual({ revision: 'r1', policies: objects });
    expect(await readPolicySnapshot(redis, prefix)).toEqual(objects);
  });

  it('an unreadable snapshot throws (the gate logs it and starts without earlier generations)', async () => {
    const prefix = `ps-${randomUUID().slice(0, 8)}`;
    await redis.set(policySnapshotKey(prefix), '{not json');
    await expect(readPolicySnapshot(redis, prefix)).rejects.toThrow();
    await redis.set(policySnapshotKey(prefix), JSON.stringify({ revision: 'r', policies: 'x' }));
    await expect(readPolicySnapshot(redis, prefix)).rejects.toThrow();
  });
});
