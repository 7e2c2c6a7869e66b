/**
 * Commit verdicts waiting for images, on real Redis: one entry per (delivery, repository, branch), and entries
 * written by releases before the repository was part of the field are settled too — only their own repository's.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { createRedisConnection } from '@gitops-gate/queue';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createImageState } from './image-state.js';

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

const SHA = 'c'.repeat(40);
const verdict = (repoUrl: string, deliveryId = 'D-1', branch = 'main'): CommitVerdictJob =>
  ({ v: 1, kind: 'commit-verdict', deliveryId, repoUrl, branch, sha: SHA, outcome: 'verified' }) as unknown as CommitVerdictJob;

describe('pending image verdicts', () => {
  it('attacker: the same delivery id and branch for another repository neither overwrites nor removes the entry', async () => {
    const state = createImageState(redis, `t-${randomUUID()}`);
    const victim = verdict('https://github.com/org/app');
    const attacker = verdict('https://github.com/evil/app');
    await state.addPending(victim);
    await state.addPending(attacker);
    expect((await state.pendingFor(SHA)).map((v) => v.repoUrl).sort()).toEqual([
      'https://github.com/evil/app',
      'https://github.com/org/app',
    ]);
    await state.removePending(attacker);
    expect((await state.pendingFor(SHA)).map((v) => v.repoUrl)).toEqual(['https://github.com/org/app']);
    await state.removePending(victim);
    expect(await state.pendingFor(SHA)).toEqual([]);
    expect(await state.pendingShas()).toEqual([]);
  });

  it('an entry in the format before the upgrade (<delivery>:<branch>) is removed with its verdict, and only by its repository', async () => {
    const prefix = `t-${randomUUID()}`;
    const state = createImageState(redis, prefix);
    const victim = verdict('https://github.com/org/app');
    await redis.hset(`${prefix}:pending-images:${SHA}`, 'D-1:main', JSON.stringify(victim));
    await redis.zadd(`${prefix}:pending-images-index`, String(Date.now() + 60_000), SHA);
    await state.removePending(verdict('https://github.com/evil/app'));
    expect(await state.pendingFor(SHA)).toHaveLength(1);
    await state.removePending(victim);
    expect(await state.pendingFor(SHA)).toEqual([]);
    expect(await state.pendingShas()).toEqual([]);
  });
});
