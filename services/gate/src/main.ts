/**
 * Gate process. Several replicas may run: each Application is decided and written under a Redis lock, and every write
 * carries the resourceVersion it was decided on. GatePolicy and ClusterGatePolicy objects are watched live and published
 * for the verifiers.
 */
import { Counter } from 'prom-client';
import { loadConfig } from '@gitops-gate/config';
import { normalizeRepoUrl, QUEUE_GATE, type FollowedRepo } from '@gitops-gate/contracts';
import { reverifyCommitJob, reverifyImageJob } from '@gitops-gate/contracts/verify-jobs';
import {
  collectFollowedRepos,
  withReplicatedRecords,
  createTokenBucket,
  pacedWrites,
  createGate,
  createReconciler,
  readSigningKeyFile,
  FINAL_INDEX_TTL_SECONDS,
  reconcileJob,
  type Gate,
  type PolicyWatcher,
} from '@gitops-gate/gate-core';
import {
  createAuditTrail,
  createCachedApplicationStore,
  createReconcileMarks,
  createImageState,
  createKubeApplicationStore,
  createPolicyWatcher,
  createRedisLock,
  loadKubeConfig,
  publishPolicySnapshot,
  readPolicySnapshot,
  trimAuditTrail,
} from '@gitops-gate/gate-store';
import { createGitMirror, GitError } from '@gitops-gate/git';
import {
  createReportQueue,
  createReportWorker,
  gitHttpToken,
  gitHubClientFromConfig,
  gitHubMode,
  reportJobFromRecord,
} from '@gitops-gate/github';
import {
  createGateQueue,
  createRedisConnection,
  createReplicationWait,
  createServiceWorker,
  createVerifyQueue,
  installShutdown,
  publishFollowedRepos,
  queueGaugeSource,
  verifyJobOptions,
} from '@gitops-gate/queue';
import { createServiceTelemetry, inSpan, listenPort, registerQueueGauges } from '@gitops-gate/telemetry';
import { createGateOpsApp } from './ops-app.js';
import { createGateProcessor } from './processor.js';
import { externalLinkAnnotation } from './ui/index.js';

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
// Decisions reported on the commit (check runs / commit statuses): queued here, sent by a worker, never awaited by a pin.
const reports = github ? createReportQueue(redis, config.QUEUE_PREFIX) : undefined;
const reportWorker = github
  ? createReportWorker({
      client: github,
      redis,
      prefix: config.QUEUE_PREFIX,
      uiUrl: config.GATE_UI_URL,
      connection: createRedisConnection(config.redis, 'worker'),
      onError: (err, job) => logger.warn({ err, jobId: job?.id, attempts: job?.attemptsMade }, 'GitHub report failed'),
    })
  : undefined;
logger.info({ github: gitHubMode(config) }, github ? 'GitHub reporting on' : 'GitHub reporting off (no GitHub App or token)');
async function reportOutcomes(outcomes: { record?: Parameters<typeof reportJobFromRecord>[0] }[]): Promise<void> {
  if (!reports) return;
  for (const o of outcomes) {
    const job = o.record ? reportJobFromRecord(o.record) : undefined;
    // A lost report is not a lost pin: logged, never retried by failing the gate job.
    if (job)
      await reports.enqueue(job).catch((err: unknown) => logger.warn({ err, decisionId: job.decisionId }, 'GitHub report not queued'));
  }
}
// Which repositories may be fetched at all: the opted-in Applications' repoURLs, decided here, published for the
// receiver (drops other pushes) and the verifiers (fetch only these, from these URLs). Once a second from the
// informer cache: a newly opted-in Application's first push may miss it by that much; reconcile catches it.
const followedOptions = { credentialHosts: config.GIT_CREDENTIAL_HOSTS, otherHosts: config.GIT_OTHER_HOSTS };
let followedNow = new Map<string, FollowedRepo>();
async function publishFollowed(): Promise<void> {
  const repos = collectFollowedRepos(await store.list(config.GATE_NAMESPACES), followedOptions);
  followedNow = new Map(repos.map((r) => [r.repoUrl, r]));
  await publishFollowedRepos(redis, config.QUEUE_PREFIX, repos);
}
await publishFollowed().catch((err: unknown) => logger.warn({ err }, 'followed repositories not published'));
const followedTimer = setInterval(
  () => void publishFollowed().catch((err: unknown) => logger.warn({ err }, 'followed repositories not published')),
  1_000,
);
followedTimer.unref();
const decisions = new Counter({
  name: 'gitops_gate_decisions_total',
  help: 'Gate decisions by action',
  labelNames: ['action'] as const,
  registers: [registry],
});
const conflicts = new Counter({
  name: 'gitops_gate_kube_conflicts_total',
  help: 'Application writes refused because the object changed since it was read (409, or 422 from a failed precondition)',
  registers: [registry],
});
// The audit trail lives in a Redis stream (durable with AOF, shared by replicas, ordered) and every record is also
// logged in full with a constant message, for SIEM pipelines.
// With a key, each record's MULTI also stores a signed checkpoint of the chain, logged with the record so a copy
// outside Redis survives a Redis writer who rolls the trail back.
const auditSigner = config.AUDIT_SIGNING_KEY_FILE ? readSigningKeyFile(config.AUDIT_SIGNING_KEY_FILE, 'AUDIT_SIGNING_KEY_FILE') : undefined;
if (auditSigner) logger.info({ auditKey: auditSigner.verifier.text }, 'audit checkpoints signed');
else logger.warn('audit checkpoints unsigned (AUDIT_SIGNING_KEY_FILE unset): a Redis writer could rewrite the trail undetected');
// A pin is acknowledged (its job completes) only once its record reached the replicas: see withReplicatedRecords.
const replication = createReplicationWait(redis, {
  replicas: config.redis.waitReplicas,
  timeoutMs: config.redis.waitTimeoutMs,
  sentinel: config.redis.sentinels.length > 0,
  ...(config.redis.cluster ? { hashTag: config.QUEUE_PREFIX } : {}),
});
const unreplicatedAudit = createAuditTrail(
  redis,
  config.QUEUE_PREFIX,
  undefined,
  (record, checkpoint) => logger.info({ audit: record, checkpoint }, 'audit record'),
  auditSigner ? { signer: auditSigner, cluster: config.GATE_CLUSTER_NAME } : undefined,
  // The coverage index lives as long as the records (30 days without an age limit).
  config.AUDIT_RETENTION_SECONDS > 0 ? config.AUDIT_RETENTION_SECONDS : FINAL_INDEX_TTL_SECONDS,
);
const audit = withReplicatedRecords(unreplicatedAudit, replication.wait);
const verifyQueue = createVerifyQueue(redis, config.QUEUE_PREFIX, (err) => logger.warn({ err }, 'queue connection error'));

let watcher: PolicyWatcher | undefined;
let statusTimer: NodeJS.Timeout | undefined;
// Set once the gate exists (the watcher's first onChange runs before): commits waiting for images are decided again
// whenever the live policies change, one pass at a time, off the watcher's chain.
let gateForPolicies: Gate | undefined;
let reevaluation: Promise<unknown> = Promise.resolve();
if (config.GATE_WATCH_POLICIES) {
  // What was in force before this start: an Enforce policy that is invalid now keeps its earlier valid generation.
  let previous: object[] = [];
  try {
    previous = await readPolicySnapshot(redis, config.QUEUE_PREFIX);
  } catch (err) {
    logger.warn({ err }, 'previous policy snapshot unreadable');
  }
  const w = createPolicyWatcher({
    previous,
    kc,
    logger,
    // Verifiers have no Kubernetes access: the policies in force reach them through Redis.
    onChange: async (set) => {
      await publishPolicySnapshot(redis, config.QUEUE_PREFIX, set);
      const g = gateForPolicies;
      if (g)
        reevaluation = reevaluation
          .then(() => g.reevaluatePending())
          .then(reportOutcomes)
          .catch((err: unknown) => logger.warn({ err }, 'pending image waits not re-evaluated'));
    },
    applications: () => store.list(config.GATE_NAMESPACES),
  });
  // Never throws: a missing CRD, RBAC or an unreachable API server is logged, reported on /readyz and retried with
  // backoff; until policies are listed, verdicts wait (their jobs retry) rather than being decided without them.
  await w.start();
  watcher = w;
  // Applications come and go without a policy event: refresh status.selectedApplications now and then.
  statusTimer = setInterval(() => void w.resync(), 60_000);
  statusTimer.unref();
}

const gate = createGate({
  store,
  span: inSpan,
  lock: createRedisLock(redis, config.QUEUE_PREFIX),
  audit,
  logger,
  namespaces: config.GATE_NAMESPACES,
  // The gate's own fetches follow the same list: a verdict's cloneUrl (a Redis job) only names which followed repository.
  isAncestor: (url, a, d) => {
    const repo = followedNow.get(normalizeRepoUrl(url));
    if (!repo || repo.refused)
      return Promise.reject(new GitError('GIT_NOT_FOLLOWED', `repository ${normalizeRepoUrl(url)} is not followed: not fetched`, false));
    return mirror.isAncestor(repo.fetchUrl, a, d);
  },
  onDecision: (action) => decisions.inc({ action }),
  onConflict: () => conflicts.inc(),
  images: createImageState(redis, config.QUEUE_PREFIX),
  livePolicies: watcher ? () => watcher.live() : undefined,
  livePolicyRevision: watcher ? () => watcher.current().revision : undefined,
  extraAnnotations: (app) =>
    config.GATE_UI_URL
      ? externalLinkAnnotation(config.GATE_UI_URL, { namespace: app.metadata.namespace ?? 'default', name: app.metadata.name })
      : {},
  requestReverify: async (verdict, reason) => {
    const revision = watcher?.current().revision ?? 'none';
    const { data, jobId } = reverifyCommitJob(verdict, revision, new Date());
    logger.info({ sha: verdict.sha, revision, reason }, 'verification requested again');
    await verifyQueue.add('commit', data, {
      ...verifyJobOptions(config.DELIVERY_RETENTION_SECONDS, config.COMPLETED_JOB_RETENTION_SECONDS),
      jobId,
    });
  },
  requestImageReverify: async (build, reason) => {
    // One request per (digest, policy revision): a result still stale after it waits for the next change, no loop.
    const revision = watcher?.current().revision ?? 'none';
    const { data, jobId } = reverifyImageJob(build, revision, new Date());
    logger.info({ image: build.image, digest: build.digest, revision, reason }, 'image verification requested again');
    await verifyQueue.add('image', data, {
      ...verifyJobOptions(config.DELIVERY_RETENTION_SECONDS, config.COMPLETED_JOB_RETENTION_SECONDS),
      jobId,
    });
  },
});
gateForPolicies = gate;
// Policies may have changed while no gate was running.
reevaluation = gate
  .reevaluatePending()
  .then(reportOutcomes)
  .catch((err: unknown) => logger.warn({ err }, 'pending image waits not re-evaluated'));

const reconciler = createReconciler({
  store,
  namespaces: config.GATE_NAMESPACES,
  listHeads: (url) => mirror.listHeads(url),
  followed: (apps) => collectFollowedRepos(apps, followedOptions),
  audit,
  marks: createReconcileMarks(redis, config.QUEUE_PREFIX),
  logger,
  enqueue: async (t) => {
    // Ids unique per repository, branch and head (and queueing): see reconcileJob.
    const { data, jobId } = reconcileJob(t);
    await verifyQueue.add('commit', data, {
      ...verifyJobOptions(config.DELIVERY_RETENTION_SECONDS, config.COMPLETED_JOB_RETENTION_SECONDS),
      jobId,
    });
  },
});
if (config.GATE_RECONCILE_SECONDS > 0) reconciler.start(config.GATE_RECONCILE_SECONDS * 1000);
// Audit retention: one gate replica at a time (a lease of 80 % of the interval) trims a batch per interval; see gate-store's audit-retention.ts.
const retention = {
  maxAgeSeconds: config.AUDIT_RETENTION_SECONDS,
  maxRecords: config.AUDIT_RETENTION_RECORDS,
  requireExport: config.AUDIT_TRIM_REQUIRES_EXPORT,
};
async function trimAudit(): Promise<void> {
  if (retention.maxAgeSeconds === 0 && retention.maxRecords === 0) return;
  const leased = await redis.set(
    `${config.QUEUE_PREFIX}:audit-trim-lease`,
    String(process.pid),
    'PX',
    Math.max(config.AUDIT_TRIM_INTERVAL_SECONDS * 800, 100),
    'NX',
  );
  if (leased !== 'OK') return;
  const result = await trimAuditTrail(
    redis,
    config.QUEUE_PREFIX,
    retention,
    new Date(),
    auditSigner ? { signer: auditSigner, cluster: config.GATE_CLUSTER_NAME } : undefined,
  );
  if (result.trimmed > 0) logger.info(result, 'audit records trimmed');
  if (result.heldForExport) logger.warn('audit records due for retention kept: not exported yet (gitops-gate audit export --mark)');
}
const trimTimer = setInterval(
  () => void trimAudit().catch((err: unknown) => logger.warn({ err }, 'audit trim failed')),
  config.AUDIT_TRIM_INTERVAL_SECONDS * 1000,
);
trimTimer.unref();
void trimAudit().catch((err: unknown) => logger.warn({ err }, 'audit trim failed'));

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

const ready = async () => {
  const problems = [
    ...((await redis.ping().catch(() => '')) === 'PONG' ? [] : ['redis unreachable']),
    ...(watcher?.health().problems ?? []),
  ];
  if (watcher && !watcher.health().synced && problems.length === 0) problems.push('policies not listed yet');
  return { ok: problems.length === 0, problems };
};
const ops = createGateOpsApp({ registry, ready, audit, store, namespaces: config.GATE_NAMESPACES, auditKey: auditSigner?.verifier.text });
const port = await listenPort(ops, '0.0.0.0', config.GATE_HTTP_PORT);
logger.info({ port, namespaces: config.GATE_NAMESPACES, watchPolicies: Boolean(watcher) }, 'gate started');

installShutdown({
  service: 'gate',
  logger,
  steps: [
    { name: 'reconciler', close: () => reconciler.stop() },
    { name: 'timers', close: () => (clearInterval(statusTimer), clearInterval(followedTimer), clearInterval(trimTimer)) },
    // Jobs in hand finish; anything not started stays in the queue for another replica.
    { name: 'worker', close: () => worker.close() },
    { name: 'report worker', close: () => reportWorker?.close() },
    { name: 'report queue', close: () => reports?.close() },
    { name: 'application watch', close: () => store.stop() },
    { name: 'policy watch', close: () => watcher?.stop() },
    { name: 'verify queue', close: () => verifyQueue.close() },
    { name: 'gate queue view', close: () => gateQueueView.close() },
    { name: 'ops server', close: () => ops.close() },
    { name: 'redis', close: () => redis.disconnect() },
    { name: 'tracing', close: () => tracing.shutdown() },
  ],
});
