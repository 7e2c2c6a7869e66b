// Row "fan-out": one push to a repository followed by N Applications (500), through the whole stack (receiver →
// verifier → gate → sandbox API server). Latency per Application = the new targetRevision seen on a watch − the push.
// The gate's writes are paced by its client-side token bucket (GATE_KUBE_WRITE_QPS / _BURST, passed through `env`).
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deliveryHeaders, pushPayload, startTestRedis } from '@gitops-gate/testing';
import { watchApplications } from './e2e.js';
import { createBareRemote, createSshKey, makeCommit, setBranch } from './lib/commits.js';
import { benchSeed, startBenchStack } from './lib/pipeline.js';
import { log, percentile } from './lib/util.js';

const REPO_URL = 'https://github.com/bench/app.git';
const SIGNER = 'dev@example.com';
const NS = 'argocd';

export async function benchFanOut({ apps = 500, qps = 300, burst = 300, timeoutMs = 60_000, env = {} } = {}) {
  const workDir = mkdtempSync(join(tmpdir(), 'gg-bench-fan-'));
  const remote = createBareRemote(workDir);
  const key = createSshKey();
  const gitHome = join(workDir, 'home');
  mkdirSync(gitHome);
  const root = makeCommit(remote, { message: 'root', key });
  const head = makeCommit(remote, { parents: [root.sha], message: 'fan', key });
  setBranch(remote, 'fan', root.sha);
  const seed = benchSeed({
    namespace: NS,
    repoUrl: REPO_URL,
    apps: Array.from({ length: apps }, (_, i) => ({ name: `fan-${i}`, branch: 'fan' })),
    policyName: 'bench-signers',
    allowedSignersLine: key.allowedSignersLine(SIGNER),
  });

  const redis = await startTestRedis({ appendfsync: 'everysec' });
  let stack;
  const pinned = new Map();
  let stopWatch = () => undefined;
  try {
    stack = await startBenchStack({
      workDir,
      redisUrl: redis.url,
      repoUrl: REPO_URL,
      remote,
      seed,
      verifiers: 1,
      queuePrefix: `fan-${randomUUID().slice(0, 8)}`,
      env: { HOME: gitHome, GATE_KUBE_WRITE_QPS: String(qps), GATE_KUBE_WRITE_BURST: String(burst), ...env },
    });
    stopWatch = watchApplications(stack.sandbox, (type, app) => {
      if (type === 'MODIFIED' && app.spec?.source?.targetRevision === head.sha && !pinned.has(app.metadata.name))
        pinned.set(app.metadata.name, performance.now());
    });
    await sleep(500);
    writeFileSync(join(remote, 'refs', 'heads', 'fan'), `${head.sha}\n`);
    const body = JSON.stringify(
      pushPayload({ repoUrl: REPO_URL, fullName: 'bench/app', ref: 'refs/heads/fan', before: root.sha, after: head.sha }),
    );
    const t0 = performance.now();
    const res = await fetch(`${stack.receiverUrl}/webhooks/github`, {
      method: 'POST',
      headers: deliveryHeaders(stack.secrets[0], 'push', body),
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error(`receiver answered ${res.status}`);
    const deadline = Date.now() + timeoutMs;
    while (pinned.size < apps && Date.now() < deadline) await sleep(20);
    const lat = [...pinned.values()].map((t) => t - t0).sort((a, b) => a - b);
    const out = {
      apps,
      pinned: pinned.size,
      qps,
      burst,
      first: lat[0] ?? NaN,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      last: lat.at(-1) ?? NaN,
    };
    log(
      `fan-out: ${out.pinned}/${apps} pinned, first ${out.first.toFixed(0)} ms, p50 ${out.p50?.toFixed(0)} ms, p99 ${out.p99?.toFixed(0)} ms, last ${out.last.toFixed(0)} ms (writes paced at ${qps}/s, burst ${burst})`,
    );
    return out;
  } finally {
    stopWatch();
    await stack?.stop?.().catch(() => undefined);
    await redis.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}
