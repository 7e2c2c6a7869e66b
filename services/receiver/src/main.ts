/**
 * Receiver process: config → Redis → queue → HTTP. Stops accepting on SIGTERM/SIGINT, drains in-flight requests,
 * then closes Redis.
 */
import { loadConfig, requireWebhookSecrets } from '@gitops-gate/config';
import { createIdentityCheck, deliveryIdentity, gitHubClientFromConfig, gitHubMode } from '@gitops-gate/github';
import {
  createFollowedRepoReader,
  createRedisConnection,
  createReplicationWait,
  createVerifyQueue,
  installShutdown,
} from '@gitops-gate/queue';
import { createServiceTelemetry, listenPort } from '@gitops-gate/telemetry';
import { createReceiverApp } from './app.js';
import { createBullIntake } from './intake.js';

const config = loadConfig(process.env);
const { logger, tracing, registry } = createServiceTelemetry('receiver', config);
const secrets = Object.keys(config.WEBHOOK_REPO_SECRETS).length > 0 ? config.webhookSecrets : requireWebhookSecrets(config);
// Auto-pipelining: the deliveries in flight at one moment share one socket write (their add scripts stay separate
// commands, each still atomic); under load this halves the receiver's CPU per delivery (bench row 1).
const redis = createRedisConnection(config.redis, 'producer', { enableAutoPipelining: true });
const replication = createReplicationWait(redis, {
  replicas: config.redis.waitReplicas,
  timeoutMs: config.redis.waitTimeoutMs,
  sentinel: config.redis.sentinels.length > 0,
  ...(config.redis.cluster ? { hashTag: config.QUEUE_PREFIX } : {}),
});
const queue = createVerifyQueue(redis, config.QUEUE_PREFIX, (err) => logger.warn({ err }, 'queue connection error'));
// The gate's followed repositories, re-read at most once a second: a push for any other repository queues nothing.
const followed = createFollowedRepoReader(redis, config.QUEUE_PREFIX, { cacheMs: 1_000 });
// With GitHub credentials, deliveries must carry the followed repository's id (and, for an App, be from an
// installation that holds it) before anything is queued.
const github = gitHubClientFromConfig(config);
const identity = github ? createIdentityCheck({ client: github, redis, prefix: config.QUEUE_PREFIX }) : undefined;
const app = createReceiverApp({
  isFollowed: async (repoUrl) => {
    const repo = await followed.lookup(repoUrl);
    return repo === undefined ? undefined : repo !== null;
  },
  secrets,
  repoSecrets: config.WEBHOOK_REPO_SECRETS,
  checkIdentity: identity ? (repoUrl, payload) => identity.check(repoUrl, deliveryIdentity(payload)) : undefined,
  intake: createBullIntake(queue, redis, {
    retentionSeconds: config.DELIVERY_RETENTION_SECONDS,
    completedSeconds: config.COMPLETED_JOB_RETENTION_SECONDS,
    afterWrite: replication.wait,
  }),
  logger,
  registry,
  maxQueueDepth: config.MAX_QUEUE_DEPTH,
});

const port = await listenPort(app, config.RECEIVER_HOST, config.RECEIVER_PORT);
logger.info({ port, secrets: secrets.length, github: gitHubMode(config) }, 'receiver listening');

// Stop accepting and drain in-flight requests first, then the queue and Redis they write to.
installShutdown({
  service: 'receiver',
  logger,
  steps: [
    { name: 'http', close: () => app.close() },
    { name: 'verify queue', close: () => queue.close() },
    { name: 'redis', close: () => redis.disconnect() },
    { name: 'tracing', close: () => tracing.shutdown() },
  ],
});
