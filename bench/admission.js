// Row 7: admission decisions answered from the verdict cache. The webhook (its own process, HTTPS, keep-alive) gets
// Pod AdmissionReviews at a fixed open-loop rate (default 500/s, as the API server would send them); latency is
// measured per review at the client, CPU in the webhook process. Also: the pure decision (review parse + decide) CPU
// per review in this process. Target (issue #14): p99 ≤ 5 ms at 500/s on this 2-core machine.
import { fork } from 'node:child_process';
import { Agent, request } from 'node:https';
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

export async function benchAdmission({ rate = 500, seconds = 10, warmupSeconds = 2 } = {}) {
  const redisServer = await startTestRedis({ appendfsync: 'everysec' });
  const redis = new Redis(redisServer.url);
  const prefix = 'bench-adm';
  const cert = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });
  await redis.set(policySnapshotKey(prefix), JSON.stringify({ revision: 'r1', policies: [policy] }));
  const images = createImageState(redis, prefix);
  await images.recordImage(verdict(DIGEST));
  await images.recordImage(verdict(SIDECAR));
  const child = fork(fileURLToPath(new URL('./lib/admission-server.js', import.meta.url)), {
    env: { PATH: process.env.PATH, REDIS_URL: redisServer.url, PREFIX: prefix, CERT: cert.certPem, KEY: cert.keyPem, PINNED },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (m) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send(m);
    });
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: cert.caPem });
  const send = (body) =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/validate',
          method: 'POST',
          agent,
          servername: 'localhost',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            const ms = performance.now() - t0;
            const allowed = res.statusCode === 200 && JSON.parse(text).response.allowed;
            resolve({ ms, allowed });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  try {
    const first = await send(podReview(0));
    if (!first.allowed) throw new Error('the bench Pod was not admitted');
    const run = async (secs) => {
      const lat = [];
      let denied = 0;
      const gap = 1000 / rate;
      const start = performance.now();
      const pending = [];
      for (let i = 1; i < rate * secs; i++) {
        // Open loop: each review leaves at its scheduled time whatever the earlier ones are doing.
        const due = start + i * gap;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        pending.push(
          send(podReview(i)).then((r) => {
            lat.push(r.ms);
            if (!r.allowed) denied += 1;
          }),
        );
      }
      await Promise.all(pending);
      return { lat: lat.sort((a, b) => a - b), denied, secs: (performance.now() - start) / 1000 };
    };
    await run(warmupSeconds);
    const cpu0 = await ask('cpu');
    const m = await run(seconds);
    const cpu1 = await ask('cpu');
    const reviews = cpu1.reviews - cpu0.reviews;
    const serverCpuUs = (cpu1.cpu.user + cpu1.cpu.system - cpu0.cpu.user - cpu0.cpu.system) / reviews;

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
      decisionCpuUsPerReview: decisionUs,
    };
    log(
      `admission @${rate}/s (load ${loadavg()[0].toFixed(1)}): p50 ${out.p50.toFixed(2)} ms p95 ${out.p95.toFixed(2)} ms p99 ${out.p99.toFixed(2)} ms; webhook CPU ${serverCpuUs.toFixed(0)} µs/review, decision ${decisionUs.toFixed(1)} µs/review`,
    );
    return out;
  } finally {
    agent.destroy();
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
    redis.disconnect();
    await redisServer.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await benchAdmission());
