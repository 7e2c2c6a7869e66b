/**
 * Gate process. Several replicas may run: each Application is decided and written under a Redis lock, and every write
 * carries the resourceVersion it was decided on. GatePolicy and ClusterGatePolicy objects are watched live and published
 * for the verifiers.
 */
import { loadConfig } from '@gitops-gate/config';
import { QUEUE_GATE } from '@gitops-gate/contracts';
import { collectFollowedRepos, createTokenBucket, pacedWrites, createGate, createReconciler } from '@gitops-gate/gate-core';
import {
  createCachedApplicationStore,
  createReconcileMarks,
  createImageState,
  createKubeApplicationStore,
  createPolicyWatcher,
  createRedisLock,
  loadKubeConfig,
  publishPolicySnapshot,
  readPolicySnapshot,
} from '@gitops-gate/gate-store';
import { createGitMirror } from '@gitops-gate/git';
import { gitHttpToken, gitHubClientFromConfig } from '@gitops-gate/github';
import {
  createGateQueue,
  createRedisConnection,
  createServiceWorker,
  createVerifyQueue,
  installShutdown,
  publishFollowedRepos,
  queueGaugeSource,
} from '@gitops-gate/queue';
import { createServiceTelemetry, inSpan, listenPort, registerQueueGauges } from '@gitops-gate/telemetry';
import { createFollowedPublisher, followedAncestry } from './followed-publisher.js';
import { auditTrimmerFromConfig, createGateAudit } from './gate-audit.js';
import { createGateMetrics } from './gate-metrics.js';
import { createGitHubReporting } from './github-reporting.js';
import { createGateOpsApp } from './ops-app.js';
import { createPendingReevaluation, gateReadiness, startPolicyWatch } from './policy-hookup.js';
import { createGateProcessor } from './processor.js';
import { externalLinkAnnotation } from './ui/index.js';
import { createVerifyRequests } from './verify-requests.js';

const config = loadConfig(process.env);
const { logger, tracing, registry } = createServiceTelemetry('gate', config);
const redis = createRedisConnection(config.redis, 'worker');
const kc = loadKubeConfig(config.KUBECONFIG);
// Candidates come from informers; every decision re-reads its Application under the lock.
// Patches are paced client-side (GATE_KUBE_WRITE_QPS / _BURST), as client-go paces a controller's requests.
const writes = createTokenBucket({ qps: config.GATE_KUBE_WRITE_QPS, burst: config.GATE_KUBE_WRITE_BURST });
const store = createCachedApplicationStore(kc, pacedWrites(createKubeApplicationStore(kc), writes), config.GATE_NAMESPACES, logger);
try {
  await store.start();
} catch (err) {
  logger.error({ err }, 'application watch failed to start; listing per verdict');
}
const github = gitHubClientFromConfig(config);
const mirror = createGitMirror({
  cacheDir: config.GIT_CACHE_DIR,
  urlRewrites: config.GIT_URL_REWRITES,
  httpToken: await gitHttpToken(config, github, (err) => logger.error({ err }, 'GitHub App installation token unavailable')),
  credentialPrefixes: config.GIT_CREDENTIAL_HOSTS,
});
const reporting = createGitHubReporting(config, github, redis, logger);
const reportOutcomes = reporting.reportOutcomes;
const followedOptions = { credentialHosts: config.GIT_CREDENTIAL_HOSTS, otherHosts: config.GIT_OTHER_HOSTS };
const followed = createFollowedPublisher({
  list: () => store.list(config.GATE_NAMESPACES),
  publish: (repos) => publishFollowedRepos(redis, config.QUEUE_PREFIX, repos),
  options: followedOptions,
  logger,
});
await followed.start(1_000);
const metrics = createGateMetrics(registry);
const { audit, signing: auditSigning, auditKey } = createGateAudit(config, redis, logger);
const verifyQueue = createVerifyQueue(redis, config.QUEUE_PREFIX, (err) => logger.warn({ err }, 'queue connection error'));

const reevaluation = createPendingReevaluation(reportOutcomes, logger);
const policyWatch = config.GATE_WATCH_POLICIES
  ? await startPolicyWatch({
      readPrevious: () => readPolicySnapshot(redis, config.QUEUE_PREFIX),
      publish: (set) => publishPolicySnapshot(redis, config.QUEUE_PREFIX, set),
      createWatcher: (opts) => createPolicyWatcher({ ...opts, kc, logger, applications: () => store.list(config.GATE_NAMESPACES) }),
      reevaluation,
      resyncMs: 60_000,
      logger,
    })
  : undefined;
const watcher = policyWatch?.watcher;
const requests = createVerifyRequests({
  queue: verifyQueue,
  revision: () => watcher?.current().revision ?? 'none',
  retentionSeconds: config.DELIVERY_RETENTION_SECONDS,
  completedJobSeconds: config.COMPLETED_JOB_RETENTION_SECONDS,
  logger,
});
const gate = createGate({
  store,
  span: inSpan,
  lock: createRedisLock(redis, config.QUEUE_PREFIX),
  audit,
  logger,
  namespaces: config.GATE_NAMESPACES,
  isAncestor: followedAncestry(followed, (url, a, d) => mirror.isAncestor(url, a, d)),
  onDecision: metrics.decision,
  onConflict: metrics.conflict,
  images: createImageState(redis, config.QUEUE_PREFIX),
  livePolicies: watcher ? () => watcher.live() : undefined,
  livePolicyRevision: watcher ? () => watcher.current().revision : undefined,
  extraAnnotations: (app) =>
    config.GATE_UI_URL
      ? externalLinkAnnotation(config.GATE_UI_URL, { namespace: app.metadata.namespace ?? 'default', name: app.metadata.name })
      : {},
  requestReverify: requests.requestReverify,
  requestImageReverify: requests.requestImageReverify,
});
// Policies may have changed while no gate was running: one pass now, then one per policy change.
reevaluation.attach(gate);

const reconciler = createReconciler({
  store,
  namespaces: config.GATE_NAMESPACES,
  listHeads: (url) => mirror.listHeads(url),
  followed: (apps) => collectFollowedRepos(apps, followedOptions),
  audit,
  marks: createReconcileMarks(redis, config.QUEUE_PREFIX),
  logger,
  enqueue: requests.enqueueReconcile,
});
if (config.GATE_RECONCILE_SECONDS > 0) reconciler.start(config.GATE_RECONCILE_SECONDS * 1000);
const trimmer = auditTrimmerFromConfig(config, redis, auditSigning, logger);
trimmer.start();

const worker = createServiceWorker(QUEUE_GATE, createGateProcessor(gate, logger, reportOutcomes), {
  connection: createRedisConnection(config.redis, 'worker'),
  prefix: config.QUEUE_PREFIX,
  concurrency: config.GATE_CONCURRENCY,
  lockDurationMs: config.WORKER_LOCK_DURATION_MS,
  stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
  logger,
  failedMessage: 'gate job failed',
});

const gateQueueView = createGateQueue(redis, config.QUEUE_PREFIX);
registerQueueGauges(registry, [queueGaugeSource(gateQueueView)]);

const ready = gateReadiness(() => redis.ping(), watcher);
const ops = createGateOpsApp({ registry, ready, audit, store, namespaces: config.GATE_NAMESPACES, auditKey });
const port = await listenPort(ops, '0.0.0.0', config.GATE_HTTP_PORT);
logger.info({ port, namespaces: config.GATE_NAMESPACES, watchPolicies: Boolean(watcher) }, 'gate started');

installShutdown({
  service: 'gate',
  logger,
  steps: [
    { name: 'reconciler', close: () => reconciler.stop() },
    { name: 'timers', close: () => (policyWatch?.stop(), followed.stop(), trimmer.stop()) },
    // Jobs in hand finish; anything not started stays in the queue for another replica.
    { name: 'worker', close: () => worker.close() },
    { name: 'GitHub reporting', close: () => reporting.close() },
    { name: 'application watch', close: () => store.stop() },
    { name: 'policy watch', close: () => watcher?.stop() },
    { name: 'verify queue', close: () => verifyQueue.close() },
    { name: 'gate queue view', close: () => gateQueueView.close() },
    { name: 'ops server', close: () => ops.close() },
    { name: 'redis', close: () => redis.disconnect() },
    { name: 'tracing', close: () => tracing.shutdown() },
  ],
});
