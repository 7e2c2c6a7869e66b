/** gate-core's ReconcileMarks in Redis: a queued head's mark and the pass lease are keys that expire (SET NX PX). */
import type { Redis } from 'ioredis';
import type { ReconcileMarks } from '@gitops-gate/gate-core';

export function createReconcileMarks(redis: Redis, prefix: string): ReconcileMarks {
  const queuedKey = (key: string) => `${prefix}:reconcile-queued:${key}`;
  return {
    async markQueued(key, ttlMs) {
      return (await redis.set(queuedKey(key), '1', 'PX', ttlMs, 'NX')) === 'OK';
    },
    async unmarkQueued(key) {
      await redis.del(queuedKey(key));
    },
    async takeLease(ttlMs) {
      return (await redis.set(`${prefix}:reconcile-lease`, String(process.pid), 'PX', ttlMs, 'NX')) === 'OK';
    },
  };
}
