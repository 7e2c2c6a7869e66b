/**
 * Admission webhook process: answers AdmissionReviews over HTTPS from the verdicts in Redis, the policy snapshot the
 * gate publishes and the Applications' pins (watched). Same image as the other services.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadConfig } from '@gitops-gate/config';
import { normalizeRepoUrl, verifyJobId, type VerifyImageJob } from '@gitops-gate/contracts';
import { createCachedApplicationStore, createKubeApplicationStore, loadKubeConfig } from '@gitops-gate/gate-store';
import { createRedisConnection, createVerifyQueue, verifyJobOptions } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createAdmissionApp, type AdmissionDeps } from './app.js';
import { createAdmissionAudit } from './audit.js';
import { createCachedResultLookup } from './result-cache.js';
import { createAdmissionInputs, createNamespaceIndex, createPolicyCache, createResultLookup } from './sources.js';

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
if (verifyQueue) {
  // The verifiers' own image path (registry fetch, signatures, provenance), queued like a registry_package delivery;
  // the gate stores the verdict, and this review waits for it, bounded well under the webhook's timeout.
  deps.verifyNow = async (builds) => {
    const deadline = Date.now() + config.ADMISSION_VERIFY_WAIT_MS;
    for (const build of builds) {
      const at = build.lastIndexOf('@');
      const image = build.slice(0, at);
      for (const p of policies.current().filter((x) => x.images.includes(image))) {
        const repoUrl = normalizeRepoUrl(p.repository);
        // One job per digest and policy generation: concurrent reviews of the same new digest share it.
        const deliveryId = `admission-${createHash('sha256')
          .update(`${build} ${p.identity.uid ?? p.identity.name}@${p.identity.generation ?? 0}`)
          .digest('hex')
          .slice(0, 32)}`;
        const job: VerifyImageJob = {
          v: 1,
          kind: 'image',
          deliveryId,
          repoUrl,
          repoFullName: new URL(repoUrl).pathname.slice(1),
          image,
          digest: build.slice(at + 1),
          tags: [],
          receivedAt: new Date().toISOString(),
          trace: undefined,
        };
        await verifyQueue.add(job.kind, job, {
          ...verifyJobOptions(config.DELIVERY_RETENTION_SECONDS, config.COMPLETED_JOB_RETENTION_SECONDS),
          jobId: verifyJobId(deliveryId),
        });
      }
    }
    while (Date.now() < deadline) {
      const found = await lookup(builds);
      if ([...found.values()].every((r) => r.length > 0)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
}

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
