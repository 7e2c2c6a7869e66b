/**
 * Admission webhook process: answers AdmissionReviews over HTTPS from the verdicts in Redis, the policy snapshot the
 * gate publishes and the Applications' pins (watched). Same image as the other services.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '@gitops-gate/config';
import { createCachedApplicationStore, createKubeApplicationStore, loadKubeConfig } from '@gitops-gate/gate-store';
import { createRedisConnection, createVerifyQueue, verifyJobOptions } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createAdmissionApp, type AdmissionDeps } from './app.js';
import { createAdmissionAudit } from './audit.js';
import { createCachedResultLookup } from './result-cache.js';
import { createAdmissionInputs, createNamespaceIndex, createPolicyCache, createResultLookup } from './sources.js';
import { createVerifyNow } from './verify-now.js';

const config = loadConfig(process.env);
const logger = createLogger('admission', config.LOG_LEVEL);
const redis = createRedisConnection(config.redis, 'worker');
const prefix = config.QUEUE_PREFIX;
const policies = createPolicyCache(redis, prefix, logger);
const kc = loadKubeConfig(config.KUBECONFIG);
const apps = createCachedApplicationStore(kc, createKubeApplicationStore(kc), config.GATE_NAMESPACES, logger);
await apps.start().catch((err: unknown) => logger.error({ err }, 'application watch failed to start'));
const index = createNamespaceIndex();
// Policies (the gate's snapshot) and Applications (informer cache) are re-read once a second and indexed per
// namespace: the hot path does no policy or Kubernetes reads, and a change reaches admission within ~1 s.
const inputs = createAdmissionInputs(policies, () => apps.list(config.GATE_NAMESPACES), index);
const refresh = () => inputs.refresh();
await refresh().catch((err: unknown) => logger.error({ err }, 'admission inputs not read'));
const refreshTimer = setInterval(() => void refresh().catch((err: unknown) => logger.warn({ err }, 'admission inputs not read')), 1_000);
refreshTimer.unref();

const audit = createAdmissionAudit(redis, prefix, logger);
const lookup = createResultLookup(redis, prefix);
// Reviews read verdicts through a cache bounded by ADMISSION_RESULT_CACHE_MS (no Redis round trip on the hot path);
// verifyNow below polls the store itself.
const cachedLookup = createCachedResultLookup(lookup, {
  ttlMs: config.ADMISSION_RESULT_CACHE_MS,
  onRefreshError: (err) => logger.warn({ err }, 'admission verdict re-read failed'),
});
const verifyQueue = config.ADMISSION_NO_VERDICT === 'verify' ? createVerifyQueue(redis, prefix) : undefined;

const deps: AdmissionDeps = {
  policiesFor: (ns) => index.policiesFor(ns),
  pinned: (ns) => index.pinned(ns),
  lookup: cachedLookup,
  record: (w, d) => audit.record(w, d),
  ready: () => inputs.ready(),
};
if (verifyQueue)
  deps.verifyNow = createVerifyNow({
    policies: () => policies.current(),
    queue: verifyQueue,
    lookup,
    waitMs: config.ADMISSION_VERIFY_WAIT_MS,
    jobOptions: verifyJobOptions(config.DELIVERY_RETENTION_SECONDS, config.COMPLETED_JOB_RETENTION_SECONDS),
  });

const tls =
  config.ADMISSION_TLS_CERT_FILE && config.ADMISSION_TLS_KEY_FILE
    ? { cert: readFileSync(config.ADMISSION_TLS_CERT_FILE, 'utf8'), key: readFileSync(config.ADMISSION_TLS_KEY_FILE, 'utf8') }
    : undefined;
if (!tls) logger.warn('ADMISSION_TLS_CERT_FILE/KEY_FILE unset: serving plain HTTP (the API server only calls HTTPS webhooks)');
const app = createAdmissionApp(deps, { https: tls });
await app.listen({ host: '0.0.0.0', port: config.ADMISSION_PORT });
logger.info({ port: config.ADMISSION_PORT, tls: tls !== undefined, noVerdict: config.ADMISSION_NO_VERDICT }, 'admission webhook listening');

const shutdown = async () => {
  clearInterval(refreshTimer);
  await app.close();
  await audit.stop();
  await apps.stop?.();
  await verifyQueue?.close();
  redis.disconnect();
  process.exit(0);
};
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
