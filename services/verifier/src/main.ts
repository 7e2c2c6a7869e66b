/**
 * Verifier process. Any number of these share the verify queue; BullMQ hands each job to one of them and hands it
 * to another if this one dies (stalled-job detection). SIGTERM finishes the jobs in hand before exiting.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'bullmq';
import { loadConfig, ConfigError } from '@gitops-gate/config';
import { QUEUE_VERIFY } from '@gitops-gate/contracts';
import { parseAllowedSigners, verifyCommit, type CommitPolicy } from '@gitops-gate/commit-verify';
import { createGitMirror } from '@gitops-gate/git';
import { createGateQueue, createRedisConnection } from '@gitops-gate/queue';
import { createLogger, createMetricsRegistry, createOpsServer } from '@gitops-gate/telemetry';
import { createVerifyProcessor } from './processor.js';

const config = loadConfig(process.env);
const logger = createLogger('verifier', config.LOG_LEVEL);

function loadPolicy(): CommitPolicy {
  if (!config.ALLOWED_SIGNERS_FILE) {
    throw new ConfigError('ALLOWED_SIGNERS_FILE: required (who may sign commits); without it every commit would be rejected');
  }
  let text: string;
  try {
    text = readFileSync(config.ALLOWED_SIGNERS_FILE, 'utf8');
  } catch (err) {
    throw new ConfigError(`ALLOWED_SIGNERS_FILE: cannot read ${config.ALLOWED_SIGNERS_FILE}: ${(err as Error).message}`);
  }
  return { name: 'allowed-signers', ssh: { allowedSigners: parseAllowedSigners(text, config.ALLOWED_SIGNERS_FILE) } };
}

const policy = loadPolicy();
const registry = createMetricsRegistry('verifier');
const connection = createRedisConnection(config.REDIS_URL, 'worker');
const gateQueue = createGateQueue(connection, config.QUEUE_PREFIX, (err) => logger.warn({ err: err.message }, 'queue connection error'));
const processor = createVerifyProcessor({
  mirror: createGitMirror({ cacheDir: config.GIT_CACHE_DIR, urlRewrites: config.GIT_URL_REWRITES, httpToken: config.GIT_HTTP_TOKEN }),
  verifyCommit: (raw, job) => verifyCommit(raw, policy, { expectedSha: job.sha }),
  gateQueue,
  logger,
  registry,
});

const worker = new Worker(QUEUE_VERIFY, processor, {
  connection: createRedisConnection(config.REDIS_URL, 'worker'),
  prefix: config.QUEUE_PREFIX,
  concurrency: config.VERIFIER_CONCURRENCY,
  // A fetch of a large repository can take a while; the lock is renewed while the job runs.
  lockDuration: 60_000,
});
worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, attempts: job?.attemptsMade, err: err.message }, 'verify job failed'));
worker.on('error', (err) => logger.warn({ err: err.message }, 'worker error'));

const ops = createOpsServer({ registry, ready: async () => (await connection.ping()) === 'PONG' });
ops.listen(config.VERIFIER_HTTP_PORT, () => {
  const addr = ops.address();
  logger.info({ port: typeof addr === 'object' && addr ? addr.port : config.VERIFIER_HTTP_PORT, concurrency: config.VERIFIER_CONCURRENCY }, 'verifier started');
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'verifier stopping');
  // close() waits for jobs in progress; anything not started stays in the queue for another replica.
  await worker.close();
  await gateQueue.close();
  ops.close();
  connection.disconnect();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
