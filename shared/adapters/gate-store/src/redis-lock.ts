/**
 * gate-core's KeyedLock in Redis: a per-Application lock, so that of several gate replicas exactly one decides and
 * writes an Application at a time (optimistic concurrency on the API server remains the backstop if a lock ever
 * expires mid-write).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { LockTimeoutError, type KeyedLock } from '@gitops-gate/gate-core';

// Delete only if we still own it: a lock that expired and was taken by another replica is not ours to release.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export function createRedisLock(redis: Redis, prefix: string, opts: { ttlMs?: number; waitMs?: number } = {}): KeyedLock {
  const ttl = opts.ttlMs ?? 30_000;
  const wait = opts.waitMs ?? 60_000;
  return {
    async withLock(key, fn) {
      const k = `${prefix}:lock:${key}`;
      const token = randomUUID();
      const deadline = Date.now() + wait;
      let delay = 5;
      while ((await redis.set(k, token, 'PX', ttl, 'NX')) !== 'OK') {
        if (Date.now() > deadline) throw new LockTimeoutError(`lock ${key} busy for more than ${wait} ms`);
        await sleep(delay);
        delay = Math.min(delay * 2, 100);
      }
      // Keep the lock alive while fn runs (a slow API server must not let a second writer in).
      const keepAlive = setInterval(() => void redis.eval(EXTEND, 1, k, token, String(ttl)).catch(() => undefined), ttl / 3);
      try {
        return await fn();
      } finally {
        clearInterval(keepAlive);
        await redis.eval(RELEASE, 1, k, token).catch(() => undefined);
      }
    },
  };
}
