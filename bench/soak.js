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
// (de-duplication 5 min, completed jobs 2 min, audit stream 5 min or 5 000 records, trimmed every 30 s) so every
// bounded family reaches its plateau within the warm-up; production's plateau is rate × the configured retention,
// which the soak prints from the bytes per key it measured.
//
// Why memory grows, when it does, is printed rather than guessed: each sample has used_memory, the backlog per queue,
// the intake and decision rates; at the warm-up's end and at the end every key is put in a family (lib/key-families.js)
// with its key count, stream/set lengths and MEMORY USAGE, next to the bound this run gives it. "Flat" is defined in the
// output: used_memory's least-squares slope after the warm-up < FLAT_KIB_PER_MIN with the backlog not growing. A
// growing backlog (the machine decides fewer pushes than offered) and a family over its bound are told apart.
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { demoApplication } from '@gitops-gate/k8s-sandbox';
import { startStack } from '@gitops-gate/local-stack';
import { deliveryHeaders, pushPayload, startTestRedis } from '@gitops-gate/testing';
import { createSshKey, makeCommit, writeEmptyTree } from './lib/commits.js';
import { keyFamilies } from './lib/key-families.js';
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
  COMPLETED_JOB_RETENTION_SECONDS: '120',
  AUDIT_RETENTION_RECORDS: '5000',
  AUDIT_RETENTION_SECONDS: '300',
  AUDIT_TRIM_INTERVAL_SECONDS: '30',
};
/** The production defaults of the same settings, for the projected plateaus. */
const PRODUCTION = { DELIVERY_RETENTION_SECONDS: 604_800, COMPLETED_JOB_RETENTION_SECONDS: 3600 };

/** Least-squares slope of ys over xs (per unit of x). */
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

/** "Flat": used_memory's least-squares slope after the warm-up below this, with the backlog not growing. */
export const FLAT_KIB_PER_MIN = 64;

/**
 * The samples after the warm-up: used_memory slope (KiB/min), its fitted growth over the window, and whether the
 * backlog grew by more than one sample interval's pushes (then the pipeline is slower than the offered rate and memory
 * follows the queue: a verdict about throughput, not about key bounds).
 */
export function flatness(samples, warmupSeconds, { rate, sampleSeconds }) {
  const after = samples.filter((s) => s.t >= warmupSeconds);
  if (after.length < 3) return { flat: undefined, samplesAfterWarmup: after.length };
  const xs = after.map((s) => s.t / 60);
  const kibPerMin = slope(
    xs,
    after.map((s) => s.usedMiB * 1024),
  );
  const datasetKibPerMin = slope(
    xs,
    after.map((s) => s.datasetMiB * 1024),
  );
  const meanMiB = after.reduce((a, s) => a + s.usedMiB, 0) / after.length;
  const backlogGrowth = after[after.length - 1].backlog - after[0].backlog;
  const behind = backlogGrowth > rate * sampleSeconds;
  const window = xs[xs.length - 1] - xs[0];
  return {
    flat: kibPerMin < FLAT_KIB_PER_MIN && !behind,
    kibPerMin,
    datasetKibPerMin,
    growthMiB: (kibPerMin * window) / 1024,
    meanMiB,
    samplesAfterWarmup: after.length,
    windowMinutes: window,
    backlogGrowth,
    behind,
  };
}

const JOB_KEEP = 10_000; // removeOnComplete count of the verify and gate queues (shared/adapters/queue)
const EVENTS_KEEP = 10_000; // BullMQ's default events stream cap (approximate trim)

/**
 * What bounds each family in this run, from the measured intake and decision rates: [family, bound (keys or items),
 * what sets it]. TTL families are bounded by rate × TTL; that bound is printed for production's TTL too.
 */
function familyBounds({ acceptedPerSec, decidedPerSec, commits, apps, backlog, failed }) {
  const de = Number(SOAK_ENV.DELIVERY_RETENTION_SECONDS);
  const audit = Number(SOAK_ENV.AUDIT_RETENTION_RECORDS) + Math.ceil(decidedPerSec * Number(SOAK_ENV.AUDIT_TRIM_INTERVAL_SECONDS));
  const kept = Number(SOAK_ENV.COMPLETED_JOB_RETENTION_SECONDS);
  const jobs = (q) => Math.min(JOB_KEEP, Math.ceil(decidedPerSec * kept)) + (backlog[q] ?? 0) + (failed[q] ?? 0);
  return {
    'verify:de:<delivery id>': { keys: Math.ceil(acceptedPerSec * de), by: `intake ${acceptedPerSec.toFixed(1)}/s × TTL ${de} s` },
    'verify:<job>': { keys: jobs('verify'), by: `completed: decided/s × ${kept} s (≤ ${JOB_KEEP}) + backlog + failed` },
    'gate:<job>': { keys: jobs('gate'), by: `completed: decided/s × ${kept} s (≤ ${JOB_KEEP}) + backlog + failed` },
    'verify:completed': { items: Math.min(JOB_KEEP, Math.ceil(decidedPerSec * kept)), by: 'removeOnComplete age/count' },
    'gate:completed': { items: Math.min(JOB_KEEP, Math.ceil(decidedPerSec * kept)), by: 'removeOnComplete age/count' },
    'verify:events': { items: EVENTS_KEEP * 1.1, by: 'BullMQ events MAXLEN ~' },
    'gate:events': { items: EVENTS_KEEP * 1.1, by: 'BullMQ events MAXLEN ~' },
    '<prefix>:audit': { items: audit, by: 'AUDIT_RETENTION_RECORDS + one trim interval' },
    '<prefix>:audit-id:<decision id>': { keys: audit + apps, by: 'retained records + one per Application' },
    '<prefix>:audit-final:<sha>': { keys: commits, by: 'distinct commits pushed' },
    '<prefix>:verdict:<hash>': { keys: commits, by: 'distinct commits pushed' },
    '<prefix>:audit-head:<namespace>/<name>': { keys: apps, by: 'Applications' },
    '<prefix>:audit-size:<namespace>/<name>': { keys: apps, by: 'Applications' },
  };
}

const MiB = (b) => (b / 2 ** 20).toFixed(2);

/**
 * Per family: keys/items and MiB at the warm-up's end and at the end, its bound and where it stands. A family is
 * "filling" while under its bound (it stops there), "at bound" within 10 % of it, "OVER BOUND" above it, and "no
 * bound known, grew" when it has none here and grew — the last two are what an unbounded family looks like.
 */
export function compareFamilies(early, late, bounds) {
  const rows = [];
  for (const name of new Set([...Object.keys(early), ...Object.keys(late)])) {
    const a = early[name] ?? { keys: 0, items: 0, bytes: 0 };
    const b = late[name] ?? { keys: 0, items: 0, bytes: 0 };
    const bound = bounds[name];
    const n = bound?.items !== undefined ? b.items : b.keys;
    const limit = bound?.items ?? bound?.keys;
    const grew = b.bytes - a.bytes > 64 * 1024 && n > (bound?.items !== undefined ? a.items : a.keys);
    const state =
      limit === undefined
        ? grew
          ? 'no bound known, grew'
          : 'steady'
        : n > limit * 1.1
          ? 'OVER BOUND'
          : n >= limit * 0.9
            ? 'at bound'
            : grew
              ? 'filling'
              : 'steady';
    rows.push({ name, early: a, late: b, limit, by: bound?.by, state, deltaBytes: b.bytes - a.bytes });
  }
  return rows.sort((x, y) => y.late.bytes - x.late.bytes);
}

function printFamilies(rows, tEarly, tLate) {
  log(`soak: Redis keys by family, t=${tEarly}s (warm-up end) → t=${tLate}s (end); MEMORY USAGE summed per family`);
  for (const r of rows) {
    if (r.late.bytes < 16 * 1024 && r.early.bytes < 16 * 1024) continue;
    const items = r.late.items || r.early.items ? `, items ${r.early.items} → ${r.late.items}` : '';
    log(
      `  ${r.name.padEnd(40)} keys ${r.early.keys} → ${r.late.keys}${items}, ${MiB(r.early.bytes)} → ${MiB(r.late.bytes)} MiB` +
        `${r.limit === undefined ? '' : `; bound ${Math.round(r.limit)} (${r.by})`} [${r.state}]`,
    );
  }
}

function makeFixture(workDir) {
  const remote = join(workDir, 'remote.git');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', remote]);
  writeEmptyTree(remote);
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
  const setRef = (branch, sha) => writeFileSync(join(remote, 'refs', 'heads', branch), `${sha}\n`);
  const branches = Array.from({ length: BRANCHES }, (_, i) => `s${i}`);
  for (const b of branches) setRef(b, root.sha);
  const apps = branches.map((b) => demoApplication({ name: `app-${b}`, namespace: NS, repoURL: REPO_URL, branch: b }));
  const policy = {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name: 'soak-signers', namespace: NS },
    spec: {
      mode: 'Enforce',
      selector: { namespaces: [NS] },
      repository: REPO_URL.replace(/\.git$/, ''),
      branches: ['*'],
      commits: { ssh: { allowedSigners: `${key.allowedSignersLine(SIGNER)}\n` } },
    },
  };
  return { remote, root, chains, setRef, branches, seed: [...apps, policy] };
}

/** Redis-side counters of one sample: memory, keys, backlog per queue, completed/failed jobs, decisions so far. */
async function redisSample(rclient, prefix) {
  const info = await rclient.info('memory');
  const num = (name) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  const p = rclient.pipeline();
  for (const q of ['verify', 'gate']) {
    for (const l of ['wait', 'active', 'paused']) p.llen(`${prefix}:${q}:${l}`);
    for (const z of ['prioritized', 'delayed', 'completed', 'failed']) p.zcard(`${prefix}:${q}:${z}`);
  }
  p.dbsize().xlen(`${prefix}:audit`);
  const r = (await p.exec()).map(([err, v]) => (err ? 0 : Number(v)));
  const q = (i) => ({ backlog: r[i] + r[i + 1] + r[i + 2] + r[i + 3] + r[i + 4], completed: r[i + 5], failed: r[i + 6] });
  let decided = 0;
  try {
    // entries-added counts every record ever appended, trimmed or not: the number of decisions so far.
    const xi = await rclient.xinfo('STREAM', `${prefix}:audit`);
    decided = Number(xi[xi.indexOf('entries-added') + 1] ?? 0);
  } catch {
    // no decision yet: no stream
  }
  const verify = q(0);
  const gate = q(7);
  return {
    usedMiB: num('used_memory') / 2 ** 20,
    datasetMiB: num('used_memory_dataset') / 2 ** 20,
    keys: r[14],
    audit: r[15],
    backlog: verify.backlog + gate.backlog,
    queues: { verify, gate },
    decided,
  };
}

export async function benchSoak({ seconds = 1200, rate = 20, warmupSeconds, sampleSeconds = 30 } = {}) {
  const warmup = warmupSeconds ?? Math.min(600, Math.floor(seconds / 2));
  const workDir = mkdtempSync(join(tmpdir(), 'gg-bench-soak-'));
  const { root, chains, setRef, branches, seed } = makeFixture(workDir);
  const redis = await startTestRedis({ appendfsync: 'everysec' });
  const rclient = new Redis(redis.url);
  const queuePrefix = `soak-${randomUUID().slice(0, 8)}`;
  const stack = await startStack({
    workDir,
    redisUrl: redis.url,
    seed,
    urlRewrites: { [REPO_URL]: `file://${join(workDir, 'remote.git')}` },
    verifiers: 2,
    gates: 1,
    logLevel: 'warn',
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
  const samples = [];
  const breakdowns = [];
  async function sample(tSec) {
    const s = { t: Math.round(tSec), accepted: statuses[202] ?? 0, ...(await redisSample(rclient, queuePrefix)) };
    samples.push(s);
    const prev = samples.at(-2);
    const dt = prev ? s.t - prev.t : 0;
    const perSec = (a, b) => (dt > 0 ? ((a - b) / dt).toFixed(1) : '-');
    log(
      `soak t=${s.t}s used_memory ${s.usedMiB.toFixed(1)} MiB (dataset ${s.datasetMiB.toFixed(1)}), ${s.keys} keys, ` +
        `accepted ${perSec(s.accepted, prev?.accepted)}/s decided ${perSec(s.decided, prev?.decided)}/s, backlog ${s.backlog} ` +
        `(verify ${s.queues.verify.backlog}, gate ${s.queues.gate.backlog}), completed ${s.queues.verify.completed}/${s.queues.gate.completed}, ` +
        `failed ${s.queues.verify.failed}/${s.queues.gate.failed}, audit stream ${s.audit}${s.t < warmup ? ' (warm-up)' : ''}`,
    );
  }
  async function breakdown(tSec) {
    const families = await keyFamilies(rclient, queuePrefix);
    const used = Number(/^used_memory:(\d+)/m.exec(await rclient.info('memory'))?.[1] ?? NaN);
    breakdowns.push({ t: Math.round(tSec), families, used });
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
        if (breakdowns.length === 0 && elapsed >= warmup) await breakdown(elapsed);
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
    await breakdown((performance.now() - start) / 1000);
  } finally {
    await stack.stop();
    rclient.disconnect();
    await redis.close();
    rmSync(workDir, { recursive: true, force: true });
  }
  // The raw figures first: a long run's samples survive a mistake in the report below.
  const raw = join(tmpdir(), 'gitops-gate-soak.json');
  writeFileSync(raw, JSON.stringify({ seconds, rate, warmup, sampleSeconds, sent, statuses, samples, breakdowns }));
  log(`soak: raw samples in ${raw}`);
  return report({ seconds, rate, warmup, sampleSeconds, sent, statuses, samples, breakdowns });
}

/**
 * The same bounded families with production's retention, at the rate the soak offered and at the rate it decided,
 * from the bytes per key measured at the end: what the plateau would be, and after how long it is reached.
 */
function projectProduction(families, { acceptedPerSec, decidedPerSec, rate }) {
  const per = (name) => {
    const f = families[name];
    return f && f.keys > 0 ? f.bytes / f.keys : 0;
  };
  const at = (r) => {
    const de = r * PRODUCTION.DELIVERY_RETENTION_SECONDS;
    const jobs = Math.min(JOB_KEEP, r * PRODUCTION.COMPLETED_JOB_RETENTION_SECONDS);
    const bytes = de * per('verify:de:<delivery id>') + jobs * (per('verify:<job>') + per('gate:<job>'));
    return { rate: r, dedupeKeys: Math.round(de), jobsPerQueue: Math.round(jobs), bytes };
  };
  const rows = [...new Set([rate, acceptedPerSec, decidedPerSec].map((r) => Math.round(r * 10) / 10))].filter((r) => r > 0).map(at);
  const text =
    `with production retention (de-duplication ${PRODUCTION.DELIVERY_RETENTION_SECONDS} s, completed jobs ${PRODUCTION.COMPLETED_JOB_RETENTION_SECONDS} s ≤ ${JOB_KEEP}/queue) ` +
    `and the bytes per key measured here (de-duplication ${per('verify:de:<delivery id>').toFixed(0)} B, verify job ${per('verify:<job>').toFixed(0)} B, gate job ${per('gate:<job>').toFixed(0)} B), ` +
    `these families plateau at ` +
    rows.map((p) => `${p.rate}/s: ${p.dedupeKeys} de-duplication keys + ${p.jobsPerQueue} jobs/queue ≈ ${MiB(p.bytes)} MiB`).join('; ') +
    ` (de-duplication keys reach theirs after 7 days, jobs after min(1 h, ${JOB_KEEP}/rate))`;
  return { rows, text };
}

/** The verdict and the printed explanation: memory slope, throughput, each key family against its bound. */
function report({ seconds, rate, warmup, sampleSeconds, sent, statuses, samples, breakdowns }) {
  const f = flatness(samples, warmup, { rate, sampleSeconds });
  const first = samples.find((s) => s.t >= warmup) ?? samples[0];
  const last = samples[samples.length - 1];
  const span = Math.max(1, last.t - first.t);
  const acceptedPerSec = (last.accepted - first.accepted) / span;
  const decidedPerSec = (last.decided - first.decided) / span;
  const [early, late] = breakdowns.length >= 2 ? breakdowns : [undefined, breakdowns[0]];
  const bounds = familyBounds({
    acceptedPerSec,
    decidedPerSec,
    commits: BRANCHES * CHAIN + 1,
    apps: BRANCHES,
    backlog: { verify: last.queues.verify.backlog, gate: last.queues.gate.backlog },
    failed: { verify: last.queues.verify.failed, gate: last.queues.gate.failed },
  });
  const families = late ? compareFamilies(early?.families ?? {}, late.families, bounds) : [];
  if (late) printFamilies(families, early?.t ?? 0, late.t);
  const unbounded = families.filter((r) => r.state === 'OVER BOUND' || r.state === 'no bound known, grew');
  const filling = families.filter((r) => r.state === 'filling');
  // Growth between the two breakdowns that no family still filling toward its bound explains, per minute.
  const fillingBytes = filling.reduce((a, r) => a + r.deltaBytes, 0);
  const minutes = early && late ? (late.t - early.t) / 60 : NaN;
  const residualKiBPerMin = early && late ? (late.used - early.used - fillingBytes) / 1024 / minutes : NaN;
  const names = (rs) => rs.map((r) => `${r.name} +${MiB(r.deltaBytes)} MiB`).join(', ');
  const verdict =
    f.flat === undefined
      ? 'too short to tell'
      : f.behind
        ? `NOT flat: the pipeline fell behind (decided ${decidedPerSec.toFixed(1)}/s of ${rate}/s offered, backlog +${f.backlogGrowth} after warm-up): rerun at a rate it keeps up with`
        : unbounded.length > 0
          ? `NOT flat: unbounded key families ${names(unbounded)}`
          : f.flat
            ? 'flat'
            : residualKiBPerMin < FLAT_KIB_PER_MIN
              ? `flat apart from bounded families still filling toward their bound (${names(filling)}; the rest ${residualKiBPerMin.toFixed(1)} KiB/min)`
              : `NOT flat: ${residualKiBPerMin.toFixed(1)} KiB/min not explained by a filling family`;
  log(
    `soak: ${sent} pushes offered (${JSON.stringify(statuses)}); after warm-up accepted ${acceptedPerSec.toFixed(1)}/s, decided ${decidedPerSec.toFixed(1)}/s, ` +
      `backlog ${first.backlog} → ${last.backlog}`,
  );
  log(
    `soak: flat means used_memory's least-squares slope over the ${f.samplesAfterWarmup} samples after warm-up < ${FLAT_KIB_PER_MIN} KiB/min and the ` +
      `backlog growing by less than one sample interval's pushes (${rate * sampleSeconds})`,
  );
  log(
    `soak: used_memory ${first.usedMiB.toFixed(1)} → ${last.usedMiB.toFixed(1)} MiB after warm-up (mean ${f.meanMiB?.toFixed(1)} MiB), slope ` +
      `${f.kibPerMin?.toFixed(1)} KiB/min (dataset ${f.datasetKibPerMin?.toFixed(1)} KiB/min) over ${f.windowMinutes?.toFixed(1)} min → ${verdict}`,
  );
  const production = projectProduction(late?.families ?? {}, { acceptedPerSec, decidedPerSec, rate });
  log(`soak: ${production.text}`);
  return {
    production,
    seconds,
    rate,
    warmup,
    sent,
    statuses,
    samples,
    ...f,
    acceptedPerSec,
    decidedPerSec,
    families,
    fillingBytes,
    residualKiBPerMin,
    verdict,
    flatKiBPerMin: FLAT_KIB_PER_MIN,
    env: SOAK_ENV,
  };
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
    `soak: Redis used_memory after warm-up: ${r.verdict} (mean ${r.meanMiB?.toFixed(1)} MiB, slope ${r.kibPerMin?.toFixed(1)} KiB/min)\n`,
  );
}
