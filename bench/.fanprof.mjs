import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { createSandboxApiServer, demoApplication } from '@gitops-gate/k8s-sandbox';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis } from '@gitops-gate/testing';
import { createGate, createTokenBucket, pacedWrites } from '@gitops-gate/gate-core';
import { createAuditTrail, createCachedApplicationStore, createKubeApplicationStore, createRedisLock } from '@gitops-gate/gate-store';
const REPO = 'https://github.com/org/app.git';
const silent = createLogger('x', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const redisServer = await startTestRedis();
const redis = createRedisConnection(redisServer.url, 'worker');
const seed = Array.from({ length: 500 }, (_, i) =>
  demoApplication({ name: `fan-${i}`, namespace: 'argocd', repoURL: REPO, branch: 'fan' }),
);
const sandbox = await createSandboxApiServer({ seed });
const kc = new KubeConfig();
kc.loadFromString(sandbox.kubeconfigYaml());
const cache = createCachedApplicationStore(kc, createKubeApplicationStore(kc), [], silent);
await cache.start();
const gate = createGate({
  store: pacedWrites(cache, createTokenBucket({ qps: 300, burst: 300 })),
  lock: createRedisLock(redis, 'p'),
  audit: createAuditTrail(redis, 'p'),
  logger: silent,
  namespaces: [],
  isAncestor: async () => false,
});
const sha = 'a'.repeat(40);
const v = {
  v: 1,
  kind: 'commit-verdict',
  deliveryId: randomUUID(),
  repoUrl: 'https://github.com/org/app',
  cloneUrl: REPO,
  repoFullName: 'org/app',
  branch: 'fan',
  sha,
  outcome: 'verified',
  method: 'ssh',
  signer: { identity: 'd' },
  code: 'VERIFIED',
  reasons: [],
  rule: 'test',
  verifiedAt: new Date().toISOString(),
  onBranch: true,
  branchHead: sha,
  policies: [{ name: 'test', namespace: 'argocd', mode: 'Enforce', selector: {}, ok: true, code: 'VERIFIED' }],
};
const t0 = performance.now();
const c0 = process.cpuUsage();
const out = await gate.applyVerdict(v);
const c1 = process.cpuUsage(c0);
console.log(
  'apps',
  out.length,
  out.filter((o) => o.action === 'pin').length,
  'pinned in',
  (performance.now() - t0).toFixed(0),
  'ms; cpu ms (gate+sandbox)',
  ((c1.user + c1.system) / 1000).toFixed(0),
  [...new Set(out.map((o) => o.action + ':' + o.reason.slice(0, 60)))].slice(0, 3),
);
await cache.stop();
await sandbox.close();
redis.disconnect();
await redisServer.close();
process.exit(0);
