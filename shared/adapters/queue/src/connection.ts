/**
 * The one way every service and the CLI connect to Redis: plain or TLS (`rediss://`, CA and client certificate),
 * ACL user and password (read from files by shared/adapters/config), Sentinel (the master is looked up and followed across a
 * failover), or Redis Cluster (keys hash-tagged through QUEUE_PREFIX).
 */
import { isIP } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisSettings } from '@gitops-gate/config';

export type ConnectionRole = 'producer' | 'worker';

/**
 * Producers fail fast when Redis is gone (the receiver must answer 503 at once, not hang until GitHub times out);
 * workers wait and reconnect forever, as BullMQ requires (`maxRetriesPerRequest: null`).
 */
function roleOptions(role: ConnectionRole): RedisOptions {
  return role === 'producer'
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: (n) => Math.min(n * 200, 2_000) }
    : { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 200, 5_000) };
}

/** Connection options from the settings; the URL's host/port/user/password are applied by ioredis from the URL. */
export function redisOptions(settings: RedisSettings): RedisOptions {
  const url = new URL(settings.url);
  // SNI carries host names only (RFC 6066); an IP address is still checked against the certificate's IP SANs.
  const tls = settings.tls ? { ...settings.tls, ...(isIP(url.hostname) === 0 ? { servername: url.hostname } : {}) } : undefined;
  const opts: RedisOptions = {
    ...(settings.username ? { username: settings.username } : {}),
    ...(settings.password ? { password: settings.password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (settings.sentinels.length === 0) return opts;
  // With Sentinel no URL is handed to ioredis (the sentinels name the server): carry its user, password and db over.
  const db = Number(url.pathname.slice(1) || '0');
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...opts,
    sentinels: settings.sentinels,
    name: settings.sentinelMaster,
    ...(settings.sentinelPassword ? { sentinelPassword: settings.sentinelPassword } : {}),
    ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: { ...tls, servername: undefined } } : {}),
    // Ask the sentinels again soon after losing the master: that is how a failover is followed without a restart.
    sentinelRetryStrategy: (n: number) => Math.min(n * 100, 1_000),
    // A connection that lands on a demoted master (it answers READONLY) reconnects and asks the sentinels again.
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
  };
}

/**
 * A client for `role`. Accepts a bare URL (tests, local stack) or the settings from shared/adapters/config. On Redis Cluster the
 * client is an ioredis `Cluster`, which has the same command interface as `Redis` for everything this project sends
 * (every key shares the QUEUE_PREFIX hash tag, so each script and MULTI lands on one node); it is typed as `Redis` so
 * that the code taking a connection stays one shape.
 */
export function createRedisConnection(target: string | RedisSettings, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const settings: RedisSettings =
    typeof target === 'string'
      ? { url: target, sentinels: [], sentinelMaster: 'mymaster', cluster: false, waitReplicas: 'auto', waitTimeoutMs: 1_000 }
      : target;
  const base = { ...roleOptions(role), ...redisOptions(settings), ...extra };
  if (settings.cluster) return createCluster(settings, base) as unknown as Redis;
  // With Sentinel the URL names no server (the sentinels do); its credentials and TLS flag still apply.
  const client = settings.sentinels.length > 0 ? new Redis(base) : new Redis(settings.url, base);
  // Errors surface through the commands that fail; an unhandled 'error' event would crash the process.
  client.on('error', () => undefined);
  return client;
}

function createCluster(settings: RedisSettings, base: RedisOptions): Cluster {
  const url = new URL(settings.url);
  const { retryStrategy, maxRetriesPerRequest, enableOfflineQueue: _offline, ...redisOpts } = base;
  const opts: ClusterOptions = {
    // The cluster client must queue commands until it has the slot map (and while it follows a MOVED), so the offline
    // queue stays on even for producers; each node connection still fails fast (connectTimeout, one retry).
    redisOptions: { ...redisOpts, maxRetriesPerRequest },
    clusterRetryStrategy: (n) => (retryStrategy ? (retryStrategy(n) ?? null) : Math.min(n * 200, 2_000)),
    ...(redisOpts.tls ? { dnsLookup: (address, cb) => cb(null, address) } : {}),
  };
  const cluster = new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], opts);
  cluster.on('error', () => undefined);
  return cluster;
}
