/**
 * `npm start`'s Redis state: fresh on every run by default (earlier decisions and retrying jobs must not carry over
 * silently), kept with --keep-state, and the banner says which.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisStateBanner, startLocalRedis } from './redis.js';

async function withRedis<T>(dir: string, fresh: boolean, fn: (client: Redis) => Promise<T>): Promise<T> {
  const server = await startLocalRedis(dir, fresh);
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  try {
    return await fn(client);
  } finally {
    client.disconnect();
    await server.stop();
  }
}

describe('local Redis state', () => {
  it('a fresh start drops the data of earlier runs; keeping state keeps it', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gg-local-redis-')), 'redis');
    await withRedis(dir, true, async (c) => {
      await c.set('gitops-gate:audit-head:argocd/demo', 'x');
    });
    // --keep-state: the AOF of the earlier run is replayed.
    expect(await withRedis(dir, false, (c) => c.get('gitops-gate:audit-head:argocd/demo'))).toBe('x');
    // Default: fresh.
    expect(await withRedis(dir, true, (c) => c.dbsize())).toBe(0);
  }, 60_000);

  it('the banner says which', () => {
    expect(redisStateBanner(false, false)).toBe("fresh: earlier runs' Redis data deleted (--keep-state keeps it)");
    expect(redisStateBanner(false, true)).toBe('kept from earlier runs (--keep-state)');
    expect(redisStateBanner(true, false)).toBe('kept (REDIS_URL is yours: never wiped)');
  });
});
