/**
 * "Acknowledged means replicated": after a write that is about to be acknowledged (the receiver's 202, the gate's
 * audit record before a pin), `WAIT n timeout` on the same connection until n replicas have it. Redis replicates
 * asynchronously; without this a failover to a replica that had not received the write takes the 202 back.
 */
import { Cluster, type Redis } from 'ioredis';
import { BaseError } from '@gitops-gate/contracts/errors';

export const REPLICATION_ERROR_CODES = ['REDIS_NOT_REPLICATED'] as const;
export type ReplicationErrorCode = (typeof REPLICATION_ERROR_CODES)[number];

export class ReplicationError extends BaseError<ReplicationErrorCode> {}

export interface ReplicationWait {
  /** Resolves when every write sent on the connection so far reached the required replicas; throws ReplicationError otherwise. */
  wait: () => Promise<void>;
  /** Replicas currently required (0 = no wait). */
  required: () => Promise<number>;
}

export interface ReplicationWaitOptions {
  /** A number, or `auto`: 1 once Redis is known to have replicas (Sentinel configured, or one ever seen). */
  replicas: number | 'auto';
  timeoutMs: number;
  /** Sentinel configured: a replicated setup by construction, so `auto` means 1 from the start. */
  sentinel?: boolean;
  /** How often `auto` looks at INFO replication (ms). */
  probeMs?: number;
  /**
   * Redis Cluster: the QUEUE_PREFIX whose hash slot holds every key. WAIT has no key, so a cluster client would send
   * it to any node (where this client wrote nothing, and WAIT succeeds at once); it must go to the slot's master.
   */
  hashTag?: string;
}

/** Connected replicas per INFO replication (`connected_slaves:N`) of the server the client is connected to. */
export async function connectedReplicas(redis: Redis): Promise<number> {
  const info = await redis.info('replication');
  const m = /^connected_slaves:(\d+)/m.exec(info);
  return m?.[1] ? Number(m[1]) : 0;
}

/** The connection to send WAIT/INFO on: the client itself, or on a cluster the master of the prefix's slot. */
async function waitTarget(client: Redis, hashTag: string | undefined): Promise<Redis> {
  const cluster: unknown = client;
  if (!(cluster instanceof Cluster)) return client;
  const slot = Number(await cluster.cluster('KEYSLOT', hashTag ?? ''));
  const owner = cluster.slots[slot]?.[0];
  const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  // Fail closed: without the owning node there is no way to know the write was replicated.
  if (!node) throw new ReplicationError('REDIS_NOT_REPLICATED', `no connection to the master of slot ${slot}`);
  return node;
}

export function createReplicationWait(client: Redis, opts: ReplicationWaitOptions): ReplicationWait {
  const probeMs = opts.probeMs ?? 10_000;
  // Sticky: once replicas were seen, a replica that dies must not silently turn acknowledgements back into
  // "in one memory only" — it makes WAIT time out (503) until a replica is back.
  let seen = opts.sentinel === true;
  let probedAt = 0;
  async function required(): Promise<number> {
    if (opts.replicas !== 'auto') return opts.replicas;
    if (!seen && Date.now() - probedAt >= probeMs) {
      probedAt = Date.now();
      seen = (await connectedReplicas(await waitTarget(client, opts.hashTag))) > 0;
    }
    return seen ? 1 : 0;
  }
  return {
    required,
    async wait() {
      const n = await required();
      if (n === 0) return;
      const acked = await (await waitTarget(client, opts.hashTag)).wait(n, opts.timeoutMs);
      if (acked < n) {
        throw new ReplicationError('REDIS_NOT_REPLICATED', `write reached ${acked} of ${n} replicas within ${opts.timeoutMs} ms`);
      }
    },
  };
}
