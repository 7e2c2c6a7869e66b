// What a relist costs at thousands of Argo CD Applications: the price a gate pays each time its watch expires (410)
// or the server ends it (every 30–60 min on a real apiserver). Measured against the sandbox API server.
//
//   npm run build && node bench/relist.js [N ...]          (default: 2000 5000)
import { CustomObjectsApi, KubeConfig, makeInformer } from '@kubernetes/client-node';
import { createSandboxApiServer, demoApplication } from '@gitops-gate/k8s-sandbox';

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const ref = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };
const path = '/apis/argoproj.io/v1alpha1/applications';

for (const n of sizes.length ? sizes : [2000, 5000]) {
  const seed = Array.from({ length: n }, (_, i) => {
    const app = demoApplication({
      name: `app-${String(i).padStart(5, '0')}`,
      namespace: `team-${i % 50}`,
      repoURL: `https://github.com/org/repo-${i % 200}`,
      branch: 'main',
    });
    app.metadata.labels = { team: `t${i % 50}`, env: i % 3 ? 'prod' : 'staging' };
    return app;
  });
  let t = performance.now();
  const server = await createSandboxApiServer({ seed, tls: false, watchTimeout: { minMs: 1000, maxMs: 1000 } });
  const seedMs = performance.now() - t;
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfigYaml({ scheme: 'http' }));
  const api = kc.makeApiClient(CustomObjectsApi);

  // Raw LIST: bytes on the wire and server time, three runs (the first warms up).
  const lists = [];
  let bytes = 0;
  for (let i = 0; i < 3; i++) {
    t = performance.now();
    const res = await fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${server.token}` } });
    bytes = (await res.arrayBuffer()).byteLength;
    lists.push(performance.now() - t);
  }
  // Client LIST through client-node (parse + model objects), what an informer's relist does.
  t = performance.now();
  const list = await api.listClusterCustomObject(ref);
  const clientListMs = performance.now() - t;
  // Informer: initial list until every object is in its cache, then a forced expiry (410) and the relist.
  const informer = makeInformer(kc, path, () => api.listClusterCustomObject(ref));
  let adds = 0;
  const synced = new Promise((resolve) => informer.on('add', () => ++adds === n && resolve()));
  t = performance.now();
  await informer.start();
  await synced;
  const informerMs = performance.now() - t;
  // Forced expiry: the server ends the watch (watchTimeout below) and the resume meets a 410, as after an outage.
  const before = server.requests().length;
  server.injectFault({ method: 'GET', pathIncludes: 'watch=true', status: 410 });
  let relistMs;
  let t410;
  const give = performance.now();
  for (;;) {
    const reqs = server.requests().slice(before);
    const expired = reqs.findIndex((r) => r.query.includes('watch=true'));
    if (expired >= 0 && t410 === undefined) t410 = performance.now();
    const relist = reqs.findIndex(
      (r, i) => i > expired && expired >= 0 && r.method === 'GET' && r.path === path && !r.query.includes('watch'),
    );
    if (relist >= 0 && reqs.slice(relist + 1).some((r) => r.query.includes('watch=true'))) {
      relistMs = performance.now() - t410;
      break;
    }
    if (performance.now() - give > 120_000) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  await informer.stop();
  await server.close();
  const med = [...lists].sort((a, b) => a - b)[1];
  console.log(
    JSON.stringify({
      applications: n,
      items: list.items.length,
      seedMs: Math.round(seedMs),
      listBytes: bytes,
      listMsMedian: Math.round(med),
      clientListMs: Math.round(clientListMs),
      informerInitialSyncMs: Math.round(informerMs),
      relistAfter410Ms: relistMs === undefined ? null : Math.round(relistMs),
    }),
  );
}
