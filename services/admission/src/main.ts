/**
 * Admission webhook process: answers AdmissionReviews over HTTPS from the verdicts in Redis, the policy snapshot the
 * gate publishes and the Applications' pins (watched). Same image as the other services.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '@gitops-gate/config';
import { createCachedApplicationStore, createKubeApplicationStore, loadKubeConfig } from '@gitops-gate/gate-store';
import { createRedisConnection, createVerifyQueue, verifyJobOptions } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createAdmissionInputs } from './admission-inputs.js';
import { createAdmissionApp, type AdmissionDeps } from './app.js';
import { createAdmissionAudit } from './audit.js';
import { createNamespaceIndex, createPolicyCache, createResultLookup } from './sources.js';
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
const inputs = createAdmissionInputs({ policies, listApplications: () => apps.list(config.GATE_NAMESPACES), index, logger });
await inputs.start(1_000);

const audit = createAdmissionAudit(redis, prefix, logger);
const lookup = createResultLookup(redis, prefix);
const verifyQueue = config.ADMISSION_NO_VERDICT === 'verify' ? createVerifyQueue(redis, prefix) : undefined;

const deps: AdmissionDeps = {
  policiesFor: (ns) => index.policiesFor(ns),
  pinned: (ns) => index.pinned(ns),
  lookup,
  record: (w, d) => audit.record(w, d),
  ready: () => inputs.ready(),
};
if (verifyQueue)
  deps.verifyNow = createVerifyNow({
    policies: () => policies.current(),
    queue: verifyQueue,
    lookup,
    waitMs: config.ADMISSION_VERIFY_WAIT_MS,
    jobOptions: verifyJobOptions(config.DELIVERY_RETENTION_SECONDS),
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
  inputs.stop();
  await app.close();
  await audit.stop();
  await apps.stop?.();
  await verifyQueue?.close();
  redis.disconnect();
  process.exit(0);
};
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
