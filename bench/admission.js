// Row 7: admission decisions answered from the verdict cache. The webhook (its own process, HTTPS, keep-alive) gets
// Pod AdmissionReviews at a fixed open-loop rate (default 500/s, as the API server would send them); latency is
// measured per review at the client, CPU in the webhook process. Also: the pure decision (review parse + decide) CPU
// per review in this process. Target (issue #14): p99 ≤ 5 ms at 500/s on this 2-core machine.
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createImageState } from '@gitops-gate/gate-store';
import { createServingCertificate } from '@gitops-gate/k8s-sandbox';
import { buildsToLookUp, decideAdmission, policiesForNamespace, readReview } from '@gitops-gate/admission';
import { createPolicyCache } from '@gitops-gate/admission';
import { D_OK, gatePolicy, IMAGE, imageVerdict, PINNED } from '@gitops-gate/admission/testing';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis } from '@gitops-gate/testing';
import { createKeepAliveClient } from './lib/keep-alive-client.js';
import { log } from './lib/util.js';

const DIGEST = D_OK;
const SIDECAR = `sha256:${'5'.repeat(64)}`;

// The admission tests' own policy (requiring a pinned commit) and image verdicts, so the bench decides what they test.
const policy = gatePolicy({ namespace: 'shop', requirePinned: true });
const verdict = (digest) => imageVerdict({ namespace: 'shop', digest, ok: true, sourceCommit: PINNED });
// A realistic Pod: two containers (app + sidecar by digest) and an init container, labels, env, probes.
const podReview = (i) =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts'] },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          generateName: 'web-7d4b9c-',
          namespace: 'shop',
          labels: { app: 'web', 'pod-template-hash': '7d4b9c' },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c', uid: 'x', controller: true }],
        },
        spec: {
          initContainers: [{ name: 'migrate', image: `${IMAGE}@${DIGEST}`, command: ['/app/migrate'] }],
          containers: [
            {
              name: 'web',
              image: `${IMAGE}:v1.4.2@${DIGEST}`,
              ports: [{ containerPort: 8080 }],
              env: [{ name: 'LOG_LEVEL', value: 'info' }],
              readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
              resources: { requests: { cpu: '100m', memory: '128Mi' } },
            },
            { name: 'proxy', image: `${IMAGE}@${SIDECAR}`, ports: [{ containerPort: 9090 }] },
          ],
          serviceAccountName: 'web',
        },
      },
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  });

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function benchAdmission({ rate = 500, seconds = 10, warmupSeconds = 2, cacheMs = 1000, anchor = false } = {}) {
  const redisServer = await startTestRedis({ appendfsync: 'everysec' });
  const redis = new Redis(redisServer.url);
  const prefix = 'bench-adm';
  const cert = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });
  await redis.set(policySnapshotKey(prefix), JSON.stringify({ revision: 'r1', policies: [policy] }));
  const images = createImageState(redis, prefix);
  await images.recordImage(verdict(DIGEST));
  await images.recordImage(verdict(SIDECAR));
  const child = fork(fileURLToPath(new URL(anchor ? './lib/admission-anchor.js' : './lib/admission-server.js', import.meta.url)), {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: redisServer.url,
      PREFIX: prefix,
      CERT: cert.certPem,
      KEY: cert.keyPem,
      PINNED,
      RESULT_CACHE_MS: String(cacheMs),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: process.env.BENCH_ADMISSION_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_ADMISSION_PROFILE}`] : [],
  });
  const ask = (m) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send(m);
    });
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const client = createKeepAliveClient({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.caPem, path: '/validate' });
  const send = async (body) => {
    const t0 = performance.now();
    const res = await client.post(body);
    const ms = performance.now() - t0;
    return { ms, allowed: res.status === 200 && JSON.parse(res.body).response.allowed };
  };
  try {
    const first = await send(podReview(0));
    if (!first.allowed) throw new Error('the bench Pod was not admitted');
    // Bodies are serialised before the clock starts: the generator's own CPU competes with the webhook for the cores.
    const bodies = Array.from({ length: Math.ceil(rate * Math.max(seconds, warmupSeconds)) + 1 }, (_, i) => podReview(i));
    const run = async (secs) => {
      const lat = [];
      const late = [];
      let denied = 0;
      const gap = 1000 / rate;
      const start = performance.now();
      const pending = [];
      for (let i = 1; i < rate * secs; i++) {
        // Open loop: each review leaves at its scheduled time whatever the earlier ones are doing.
        const due = start + i * gap;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        // How late the generator sent it: large values mean the generator, not the webhook, was starved of CPU.
        late.push(Math.max(0, performance.now() - due));
        pending.push(
          send(bodies[i]).then((r) => {
            lat.push(r.ms);
            if (!r.allowed) denied += 1;
          }),
        );
      }
      await Promise.all(pending);
      return {
        lat: lat.sort((a, b) => a - b),
        late: late.sort((a, b) => a - b),
        denied,
        secs: (performance.now() - start) / 1000,
        connections: client.connections(),
      };
    };
    await run(warmupSeconds);
    const cpu0 = await ask('cpu');
    const load0 = loadavg()[0];
    const client0 = process.cpuUsage();
    const m = await run(seconds);
    const clientCpu = process.cpuUsage(client0);
    const cpu1 = await ask('cpu');
    const reviews = cpu1.reviews - cpu0.reviews;
    const serverCpuUs = (cpu1.cpu.user + cpu1.cpu.system - cpu0.cpu.user - cpu0.cpu.system) / reviews;
    const clientCpuUs = (clientCpu.user + clientCpu.system) / m.lat.length;
    // In the webhook: from the request's headers parsed to the response handed to the socket (no client, no network).
    const inside = cpu1.lat.sort((a, b) => a - b);

    // The decision alone (parse the review, select policies, decide) with the stored results in memory.
    const pc = createPolicyCache(redis, prefix, createLogger('bench', 'silent'));
    await pc.refresh();
    const w0 = readReview(JSON.parse(podReview(1)));
    const results = new Map();
    for (const b of buildsToLookUp(w0.images))
      results.set(
        b,
        Object.values(await redis.hgetall(`${prefix}:image-results:${b}`)).map((j) => JSON.parse(j)),
      );
    const body = podReview(2);
    const n = 20_000;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const w = readReview(JSON.parse(body));
      decideAdmission({ images: w.images, policies: policiesForNamespace(pc.current(), w.namespace), results, pinned: new Set([PINNED]) });
    }
    const c1 = process.cpuUsage(c0);
    const decisionUs = (c1.user + c1.system) / n;
    const out = {
      loadavg: loadavg()[0],
      loadavgBefore: load0,
      rate,
      seconds,
      sent: m.lat.length,
      achieved: m.lat.length / m.secs,
      denied: m.denied,
      p50: pct(m.lat, 50),
      p90: pct(m.lat, 90),
      p95: pct(m.lat, 95),
      p99: pct(m.lat, 99),
      max: m.lat[m.lat.length - 1],
      serverCpuUsPerReview: serverCpuUs,
      clientCpuUsPerReview: clientCpuUs,
      insideP50: pct(inside, 50),
      insideP99: pct(inside, 99),
      generatorLateP99: pct(m.late, 99),
      connections: m.connections,
      decisionCpuUsPerReview: decisionUs,
    };
    const who = anchor ? 'admission anchor (bare node:https)' : 'admission';
    log(
      `${who} @${rate}/s, ${out.sent} reviews (load ${load0.toFixed(1)} → ${out.loadavg.toFixed(1)}): p50 ${out.p50.toFixed(2)} ms p95 ${out.p95.toFixed(2)} ms p99 ${out.p99.toFixed(2)} ms max ${out.max.toFixed(1)} ms; inside the webhook p50 ${out.insideP50.toFixed(2)} ms p99 ${out.insideP99.toFixed(2)} ms; generator late p99 ${out.generatorLateP99.toFixed(1)} ms, ${out.connections} connections`,
    );
    log(
      `${who} CPU per review: webhook ${serverCpuUs.toFixed(0)} µs, decision ${decisionUs.toFixed(1)} µs, load generator ${clientCpuUs.toFixed(0)} µs; ${out.denied} denied`,
    );
    if (!anchor)
      log(`admission target p99 ≤ 5 ms at 500/s: ${rate >= 500 && out.p99 <= 5 ? 'met' : rate < 500 ? `not measured at ${rate}/s` : 'NO'}`);
    return out;
  } finally {
    client.close();
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    redis.disconnect();
    await redisServer.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node bench/admission.js [--rate N] [--seconds N] [--cache-ms N] [--anchor]   (--cache-ms 0: a Redis round trip per review)
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const opts = { rate: arg('rate', 500), seconds: arg('seconds', 10), cacheMs: arg('cache-ms', 1000) };
  console.log(await benchAdmission(opts));
  // --anchor: then the same load against a bare node:https webhook (the platform's floor on this machine, now).
  if (process.argv.includes('--anchor')) console.log(await benchAdmission({ ...opts, anchor: true }));
}
