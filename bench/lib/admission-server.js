// The admission webhook for bench/admission.js, in a process of its own (as deployed): HTTPS, verdicts in Redis,
// policies from the snapshot. Answers `cpu` messages with its CPU time and the number of reviews answered.
import { Redis } from 'ioredis';
import {
  createAdmissionApp,
  createAdmissionInputs,
  createAdmissionAudit,
  createCachedResultLookup,
  createNamespaceIndex,
  createPolicyCache,
  createResultLookup,
} from '@gitops-gate/admission';
import { createLogger } from '@gitops-gate/telemetry';

const { REDIS_URL, PREFIX, CERT, KEY } = process.env;
const redis = new Redis(REDIS_URL);
const logger = createLogger('admission-bench', 'silent');
const policies = createPolicyCache(redis, PREFIX, logger);
const index = createNamespaceIndex();
const apps = [
  {
    metadata: { name: 'shop', namespace: 'argocd', annotations: { 'gitops-gate.io/verified-sha': process.env.PINNED } },
    spec: { destination: { namespace: 'shop' } },
  },
];
// As main.ts: policies and Applications re-read once a second on the thread that answers reviews.
const inputs = createAdmissionInputs(policies, async () => apps, index);
await inputs.refresh();
const refreshTimer = setInterval(() => void inputs.refresh(), 1_000);
const audit = createAdmissionAudit(redis, PREFIX, logger);
let reviews = 0;
const app = createAdmissionApp(
  {
    policiesFor: (ns) => index.policiesFor(ns),
    pinned: (ns) => index.pinned(ns),
    // As main.ts wires it: verdicts through the in-process cache (RESULT_CACHE_MS=0: a Redis round trip per review).
    lookup: createCachedResultLookup(createResultLookup(redis, PREFIX), { ttlMs: Number(process.env.RESULT_CACHE_MS ?? 1000) }),
    record: (w, d) => {
      reviews += 1;
      audit.record(w, d);
    },
  },
  { https: { cert: CERT, key: KEY } },
);
// Latency inside the webhook: from the request (headers parsed) to the response handed to the TLS socket.
let lat = [];
app.server.on('request', (_req, res) => {
  const t0 = performance.now();
  res.once('finish', () => lat.push(performance.now() - t0));
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.send?.({ port: app.server.address().port });
process.on('message', (m) => {
  if (m === 'cpu') {
    process.send?.({ cpu: process.cpuUsage(), reviews, lat });
    lat = [];
  }
  if (m === 'stop')
    void app.close().then(() => {
      clearInterval(refreshTimer);
      redis.disconnect();
      process.exit(0);
    });
});
