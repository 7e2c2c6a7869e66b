/**
 * Verifier process. Any number of these share the verify queue; BullMQ hands each job to one of them and hands it
 * to another if this one dies (stalled-job detection). SIGTERM finishes the jobs in hand before exiting.
 */
import { loadConfig } from '@gitops-gate/config';
import { QUEUE_VERIFY } from '@gitops-gate/contracts';
import { createGitMirror } from '@gitops-gate/git';
import { gitHttpToken, gitHubClientFromConfig } from '@gitops-gate/github';
import {
  createFollowedRepoReader,
  createGateQueue,
  createRedisConnection,
  createServiceWorker,
  createVerifyQueue,
  installShutdown,
  queueGaugeSource,
} from '@gitops-gate/queue';
import { createOpsApp, createServiceTelemetry, listenPort, registerQueueGauges } from '@gitops-gate/telemetry';
import {
  createCommitChecker,
  createPolicySource,
  loadCommitPolicies,
  loadVerifyEnvironment,
  verifyEnvironmentRevision,
} from './commit-checker.js';
import { createVerifyProcessor } from './processor.js';
import { createVerdictCache } from './verdict-cache.js';
import { createImageChecker } from './image-checker.js';
import { createVerifierMetrics } from './verifier-metrics.js';

const config = loadConfig(process.env);
const { logger, tracing, registry } = createServiceTelemetry('verifier', config);

// Trust material and policies are built once per process and reused for every job.
const filePolicies = await loadCommitPolicies(config);
const verifyEnv = loadVerifyEnvironment(config);
logger.info(
  { policies: filePolicies.map((p) => ({ name: p.name, mode: p.mode, repository: p.repository, branches: p.branches })) },
  'file policies loaded',
);
const connection = createRedisConnection(config.redis, 'worker');
const gateQueue = createGateQueue(connection, config.QUEUE_PREFIX, (err) => logger.warn({ err }, 'queue connection error'));
const metrics = createVerifierMetrics(registry);
const verdictCache = createVerdictCache(connection, config.QUEUE_PREFIX, {
  trustRevision: verifyEnvironmentRevision(verifyEnv, config.REKOR_URL),
  onLookup: (hit) => metrics.cacheLookup('commit', hit),
});
metrics.watchCoalescing(() => verdictCache.coalescing());
const policySource = createPolicySource(connection, config.QUEUE_PREFIX, filePolicies, logger);
const processor = createVerifyProcessor({
  mirror: createGitMirror({
    cacheDir: config.GIT_CACHE_DIR,
    urlRewrites: config.GIT_URL_REWRITES,
    httpToken: await gitHttpToken(config, gitHubClientFromConfig(config), (err) =>
      logger.error({ err }, 'GitHub App installation token unavailable'),
    ),
    credentialPrefixes: config.GIT_CREDENTIAL_HOSTS,
  }),
  // The gate's followed repositories (what to fetch, from where); re-read at most once a second.
  followed: (() => {
    const reader = createFollowedRepoReader(connection, config.QUEUE_PREFIX, { cacheMs: 1_000 });
    return (repoUrl: string) => reader.lookup(repoUrl);
  })(),
  verifyCommit: createCommitChecker(policySource, verifyEnv, verdictCache),
  verifyImage: createImageChecker({
    policies: policySource,
    // One parsed trusted_root.json per process: commits (gitsign) and images (bundles) verify against the same object.
    trust: verifyEnv.trust,
    credentials: config.REGISTRY_CREDENTIALS,
    insecureHosts: config.REGISTRY_INSECURE_HOSTS,
    mirrors: config.REGISTRY_MIRRORS,
    tokenRealms: config.REGISTRY_TOKEN_REALMS,
    limits: {
      maxImageBytes: config.IMAGE_MATERIAL_BUDGET_BYTES,
      maxSignatureBytes: config.IMAGE_SIGNATURE_MAX_BYTES,
      deadlineMs: config.IMAGE_VERIFY_DEADLINE_SECONDS * 1000,
    },
    cache: {
      redis: connection,
      prefix: config.QUEUE_PREFIX,
      rejectionTtlSeconds: config.IMAGE_REJECTION_CACHE_SECONDS,
      onLookup: (hit) => metrics.cacheLookup('image', hit),
    },
  }),
  gateQueue,
  logger,
  registry,
  historyDepth: config.VERDICT_HISTORY_DEPTH,
  completedJobSeconds: config.COMPLETED_JOB_RETENTION_SECONDS,
});

const worker = createServiceWorker(QUEUE_VERIFY, processor, {
  connection: createRedisConnection(config.redis, 'worker'),
  prefix: config.QUEUE_PREFIX,
  concurrency: config.VERIFIER_CONCURRENCY,
  lockDurationMs: config.WORKER_LOCK_DURATION_MS,
  stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
  logger,
  failedMessage: 'verify job failed',
});

// Depth and age of the verify queue: what KEDA / the HPA scale verifiers on.
const verifyQueueView = createVerifyQueue(connection, config.QUEUE_PREFIX);
registerQueueGauges(registry, [queueGaugeSource(verifyQueueView), queueGaugeSource(gateQueue)]);

const ops = createOpsApp({ registry, ready: async () => (await connection.ping()) === 'PONG' });
const port = await listenPort(ops, '0.0.0.0', config.VERIFIER_HTTP_PORT);
logger.info({ port, concurrency: config.VERIFIER_CONCURRENCY }, 'verifier started');

// close() on the worker waits for jobs in progress; anything not started stays in the queue for another replica.
installShutdown({
  service: 'verifier',
  logger,
  steps: [
    { name: 'worker', close: () => worker.close() },
    { name: 'gate queue', close: () => gateQueue.close() },
    { name: 'verify queue view', close: () => verifyQueueView.close() },
    { name: 'ops server', close: () => ops.close() },
    { name: 'redis', close: () => connection.disconnect() },
    { name: 'tracing', close: () => tracing.shutdown() },
  ],
});
