/**
 * Receiver process: config → Redis → queue → HTTP. Stops accepting on SIGTERM/SIGINT, drains in-flight requests,
 * then closes Redis.
 */
import { loadConfig, requireWebhookSecrets } from '@gitops-gate/config';
import { createFollowedRepoReader, createRedisConnection, createVerifyQueue } from '@gitops-gate/queue';
import { createLogger, setupTracing, createMetricsRegistry } from '@gitops-gate/telemetry';
import { createReceiverApp } from './app.js';
import { createBullIntake } from './intake.js';

const config = loadConfig(process.env);
const logger = createLogger('receiver', config.LOG_LEVEL);
const tracing = setupTracing({ service: 'gitops-gate-receiver', endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
const secrets = requireWebhookSecrets(config);
const redis = createRedisConnection(config.REDIS_URL, 'producer');
const queue = createVerifyQueue(redis, config.QUEUE_PREFIX, (err) => logger.warn({ err: err.message }, 'queue connection error'));
// The gate's followed repositories, re-read at most once a second: a push for any other repository queues nothing.
const followed = createFollowedRepoReader(redis, config.QUEUE_PREFIX, { cacheMs: 1_000 });
const app = createReceiverApp({
  isFollowed: async (repoUrl) => {
    const repo = await followed.lookup(repoUrl);
    return repo === undefined ? undefined : repo !== null;
  },
  secrets,
  intake: createBullIntake(queue, redis, { retentionSeconds: config.DELIVERY_RETENTION_SECONDS }),
  logger,
  registry: createMetricsRegistry('receiver'),
  maxQueueDepth: config.MAX_QUEUE_DEPTH,
});

await app.listen({ host: config.RECEIVER_HOST, port: config.RECEIVER_PORT });
const addr = app.server.address();
logger.info({ port: typeof addr === 'object' && addr ? addr.port : config.RECEIVER_PORT, secrets: secrets.length }, 'receiver listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'receiver stopping');
  await app.close();
  await queue.close();
  redis.disconnect();
  await tracing.shutdown().catch(() => undefined);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
