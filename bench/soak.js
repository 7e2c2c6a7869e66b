// Soak: a steady push rate through the real stack (receiver, 2 verifiers, 1 gate as processes; real redis-server with
// AOF everysec) for a long time, sampling Redis `used_memory` and the key count; after the warm-up the memory must
// stay flat (every key expires or is trimmed). Not a test: it reports, nothing asserts.
//
//   npm run bench -- soak        (20 minutes at 20 pushes/s)
//   node bench/soak.js [--seconds N] [--rate N] [--warmup N] [--sample N]    (after npm run build)
//   or env SOAK_SECONDS, SOAK_RATE, SOAK_WARMUP_SECONDS, SOAK_SAMPLE_SECONDS
//
// Pushes cycle through a fixed pool of signed commits (20 branches × 30 commits, each branch moved forward and, at
// the end of its chain, back to its root), each under a new delivery id: every push is verified (from the verdict
// cache after the first round), decided and audited. The retention bounds are scaled to the soak's length
// (de-duplication 5 min, audit stream 5 000 records trimmed every 30 s) so the plateau shows within the run; in
// production the plateau is rate × the configured retention. BullMQ keeps up to 10 000 completed jobs per queue (1 h):
// at 20 pushes/s that cap is reached after ~8 minutes, hence the default warm-up of 10 minutes.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { deliveryHeaders, pushPayload, startTestRedis } from '@gitops-gate/testing';
import { createBareRemote, createSshKey, makeCommit, setBranch } from './lib/commits.js';
import { benchSeed, queueBacklog, startBenchStack } from './lib/pipeline.js';
import { log } from './lib/util.js';

const REPO_URL = 'https://github.com/soak/app.git';
const SIGNER = 'dev@example.com';
const NS = 'argocd';
const BRANCHES = 20;
const CHAIN = 30;
const MAX_IN_FLIGHT = 200;
/** Retention scaled to the soak (see the header). */
const SOAK_ENV = {
  DELIVERY_RETENTION_SECONDS: '300',
  AUDIT_RETENTION_RECORDS: '5000',
  AUDIT_RETENTION_SECONDS: '600',
  AUDIT_TRIM_INTERVAL_SECONDS: '30',
};

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * Flat: over the samples after the warm-up, the fitted growth across that window is under 5 % of the mean used_memory
 * (or under 1 MiB), i.e. what remains is noise and the trim sawtooth, not a trend.
 */
export function flatness(samples, warmupSeconds) {
  const after = samples.filter((s) => s.t >= warmupSeconds);
  if (after.length < 3) return { flat: undefined, growthMiB: NaN, meanMiB: NaN, samples: after.length };
  const xs = after.map((s) => s.t);
  const ys = after.map((s) => s.usedMiB);
  const growthMiB = slope(xs, ys) * (xs[xs.length - 1] - xs[0]);
  const meanMiB = ys.reduce((a, b) => a + b, 0) / ys.length;
  // A backlog that grows means the pipeline is slower than the offered rate: memory then follows the queue, and
  // that says nothing about key bounds. Reported as such, not as a leak.
  const backlogGrowth = after[after.length - 1].backlog - after[0].backlog;
  return { flat: growthMiB < Math.max(1, 0.05 * meanMiB), growthMiB, meanMiB, samples: after.length, backlogGrowth };
}

export async function benchSoak({ seconds = 1200, rate = 20, warmupSeconds, sampleSeconds = 30 } = {}) {
  const warmup = warmupSeconds ?? Math.min(600, Math.floor(seconds / 2));
  const workDir = mkdtempSync(join(tmpdir(), 'gg-bench-soak-'));
  const remote = createBareRemote(workDir);
  const key = createSshKey();
  let t = Math.floor(Date.now() / 1000) - 3600;
  const root = makeCommit(remote, { message: 'root', key, time: t });
  const chains = Array.from({ length: BRANCHES }, (_, i) => {
    const chain = [];
    let parent = root.sha;
    for (let k = 0; k < CHAIN; k++) {
      parent = makeCommit(remote, { parents: [parent], message: `s${i} ${k}`, key, time: ++t }).sha;
      chain.push(parent);
    }
    return chain;
  });
  const setRef = (branch, sha) => setBranch(remote, branch, sha);
  const branches = Array.from({ length: BRANCHES }, (_, i) => `s${i}`);
  for (const b of branches) setRef(b, root.sha);
  const seed = benchSeed({
    namespace: NS,
    repoUrl: REPO_URL,
    apps: branches.map((b) => ({ name: `app-${b}`, branch: b })),
    policyName: 'soak-signers',
    allowedSignersLine: key.allowedSignersLine(SIGNER),
  });

  const redis = await startTestRedis({ appendfsync: 'everysec' });
  const rclient = new Redis(redis.url);
  const queuePrefix = `soak-${randomUUID().slice(0, 8)}`;
  const stack = await startBenchStack({
    workDir,
    redisUrl: redis.url,
    repoUrl: REPO_URL,
    remote,
    seed,
    verifiers: 2,
    queuePrefix,
    env: { GATE_RECONCILE_SECONDS: '0', ...SOAK_ENV },
    onLog: () => undefined,
  });
  const cursor = new Array(BRANCHES).fill(-1);
  const heads = new Map();
  const statuses = {};
  async function push(j) {
    const i = j % BRANCHES;
    cursor[i] = (cursor[i] + 1) % CHAIN;
    const sha = chains[i][cursor[i]];
    const branch = branches[i];
    const before = heads.get(branch) ?? root.sha;
    heads.set(branch, sha);
    setRef(branch, sha);
    const body = JSON.stringify(pushPayload({ repoUrl: REPO_URL, fullName: 'soak/app', ref: `refs/heads/${branch}`, before, after: sha }));
    try {
      const res = await fetch(`${stack.receiverUrl}/webhooks/github`, {
        method: 'POST',
        headers: deliveryHeaders(stack.secrets[0], 'push', body, randomUUID()),
        body,
      });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    } catch {
      statuses.error = (statuses.error ?? 0) + 1;
    }
  }
  const backlog = queueBacklog(rclient, queuePrefix);
  const samples = [];
  async function sample(tSec) {
    const info = await rclient.info('memory');
    const usedMiB = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN) / 2 ** 20;
    const s = {
      t: Math.round(tSec),
      usedMiB,
      keys: await rclient.dbsize(),
      audit: await rclient.xlen(`${queuePrefix}:audit`),
      backlog: await backlog(),
    };
    samples.push(s);
    log(
      `soak t=${s.t}s used_memory ${usedMiB.toFixed(1)} MiB, ${s.keys} keys, audit stream ${s.audit}, backlog ${s.backlog}${s.t < warmup ? ' (warm-up)' : ''}`,
    );
  }

  log(
    `soak: ${seconds} s at ${rate} pushes/s, warm-up ${warmup} s, sample every ${sampleSeconds} s; retention for the soak: ${JSON.stringify(SOAK_ENV)}`,
  );
  let sent = 0;
  try {
    const start = performance.now();
    const inflight = new Set();
    let nextSample = 0;
    for (;;) {
      const elapsed = (performance.now() - start) / 1000;
      if (elapsed >= nextSample) {
        await sample(elapsed);
        nextSample += sampleSeconds;
      }
      if (elapsed >= seconds) break;
      const due = Math.floor(elapsed * rate);
      while (sent < due && inflight.size < MAX_IN_FLIGHT) {
        const p = push(sent++);
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      await sleep(10);
    }
    await Promise.all(inflight);
  } finally {
    await stack.stop();
    rclient.disconnect();
    await redis.close();
    rmSync(workDir, { recursive: true, force: true });
  }
  const f = flatness(samples, warmup);
  const behind = f.backlogGrowth > 0.1 * rate * (seconds - warmup);
  const verdict =
    f.flat === undefined
      ? 'too short to tell'
      : f.flat
        ? 'flat'
        : behind
          ? `NOT flat, but the pipeline fell behind (backlog +${f.backlogGrowth} after warm-up): rerun at a rate it keeps up with`
          : 'NOT flat';
  log(
    `soak: ${sent} pushes (${JSON.stringify(statuses)}); used_memory after warm-up: mean ${f.meanMiB.toFixed(1)} MiB, fitted growth ${f.growthMiB.toFixed(2)} MiB over ${f.samples} samples → ${verdict}`,
  );
  return { seconds, rate, warmup, sent, statuses, samples, ...f, verdict, env: SOAK_ENV };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { seconds: { type: 'string' }, rate: { type: 'string' }, warmup: { type: 'string' }, sample: { type: 'string' } },
  });
  const num = (flag, env) => ((flag ?? process.env[env]) ? Number(flag ?? process.env[env]) : undefined);
  const r = await benchSoak({
    seconds: num(values.seconds, 'SOAK_SECONDS'),
    rate: num(values.rate, 'SOAK_RATE'),
    warmupSeconds: num(values.warmup, 'SOAK_WARMUP_SECONDS'),
    sampleSeconds: num(values.sample, 'SOAK_SAMPLE_SECONDS'),
  });
  process.stdout.write(
    `soak: Redis used_memory ${r.verdict} after warm-up (mean ${r.meanMiB.toFixed(1)} MiB, growth ${r.growthMiB.toFixed(2)} MiB)\n`,
  );
}
