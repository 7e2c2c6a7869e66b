// Row 2: webhook → Application patched, p50/p99, open loop at a fixed push rate through the real stack
// (@gitops-gate/local-stack: receiver, 2 verifiers, 1 gate as processes; real redis-server with AOF everysec; the
// sandbox Kubernetes API server in this process). The patch is detected by a Kubernetes watch on Applications.
//
// fresh:  every push is a new SSH-signed commit (verifier fetches it, verifies, gate checks ancestry, patches).
// cached: the same commits pushed again to other branches (a promotion), under new delivery ids — the verifier's
//         verdict cache (Redis, keyed by commit bytes + policy + trust root) answers instead of a verification.
//
// Commits are made in-process (bench/lib/commits.js: Ed25519 SSHSIG, loose objects written into the bare "remote");
// each push moves the branch ref in the remote first, as GitHub does before it sends the webhook.
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startArgoWriter } from '@gitops-gate/local-stack';
import { deliveryHeaders, freePort, pushPayload, startTestRedis } from '@gitops-gate/testing';
import { countTracedGit, createBareRemote, createSshKey, makeCommit, setBranch, startGitTrace, stopGitTrace } from './lib/commits.js';
import { benchSeed, metricValue, queueBacklog, startBenchStack } from './lib/pipeline.js';
import { countRedisCommands, cpuSplit, log, percentile, redisDelta, redisStats } from './lib/util.js';

const REPO_URL = 'https://github.com/bench/app.git';
const SIGNER = 'dev@example.com';
const NS = 'argocd';

/** Streams Application watch events; calls onEvent(type, app) for each. */
export function watchApplications(sandbox, onEvent) {
  const url = new URL('/apis/argoproj.io/v1alpha1/applications?watch=1&allowWatchBookmarks=false', sandbox.url);
  let buf = '';
  const req = httpRequest(url, { headers: { authorization: `Bearer ${sandbox.token}` } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) {
          const ev = JSON.parse(line);
          onEvent(ev.type, ev.object);
        }
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return () => req.destroy();
}

/**
 * A minimal OTLP/HTTP (JSON) trace collector: the services export their spans here (OTEL_EXPORTER_OTLP_ENDPOINT), so
 * each push's time can be split into stages (receive, verify queue, verify, gate queue, gate, patch).
 */
async function startSpanCollector() {
  const spans = [];
  const nanos = (v) =>
    (typeof v === 'object' && v !== null ? Number(BigInt.asUintN(32, BigInt(v.low)) + (BigInt(v.high) << 32n)) : Number(v)) / 1e6;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        if (/json/.test(req.headers['content-type'] ?? '')) {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          for (const rs of body.resourceSpans ?? [])
            for (const ss of rs.scopeSpans ?? [])
              for (const sp of ss.spans ?? []) {
                const attrs = Object.fromEntries((sp.attributes ?? []).map((a) => [a.key, Object.values(a.value ?? {})[0]]));
                spans.push({
                  traceId: sp.traceId,
                  name: sp.name,
                  start: nanos(sp.startTimeUnixNano),
                  end: nanos(sp.endTimeUnixNano),
                  attrs,
                });
              }
        }
      } catch {
        // not a batch we understand: no breakdown for it
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, spans, close: () => new Promise((r) => server.close(r)) };
}

const STAGES = [
  'receive',
  'verify queue',
  'verify: read commit (git)',
  'verify: signature/cache',
  'verify: rest',
  'gate queue',
  'gate: before patch',
  'gate: patch',
  'gate: after patch',
];

/** Median ms of each stage over the pushes whose delivery ids are given. */
function stageBreakdown(spans, deliveries) {
  const byTrace = new Map();
  for (const sp of spans) {
    if (!byTrace.has(sp.traceId)) byTrace.set(sp.traceId, []);
    byTrace.get(sp.traceId).push(sp);
  }
  const want = new Set(deliveries);
  const rows = Object.fromEntries(STAGES.map((s) => [s, []]));
  let traced = 0;
  for (const list of byTrace.values()) {
    const one = (name) => list.find((s) => s.name === name);
    const recv = one('webhook.receive');
    if (!recv || !want.has(recv.attrs['github.delivery'])) continue;
    const ver = one('verify.commit');
    const read = one('git.fetch');
    const sig = one('signature.verify');
    const gate = one('gate.apply');
    const patch = one('kube.patch');
    if (!ver || !read || !sig || !gate || !patch) continue;
    traced++;
    rows['receive'].push(recv.end - recv.start);
    rows['verify queue'].push(ver.start - recv.end);
    rows['verify: read commit (git)'].push(read.end - read.start);
    rows['verify: signature/cache'].push(sig.end - sig.start);
    rows['verify: rest'].push(ver.end - ver.start - (read.end - read.start) - (sig.end - sig.start));
    rows['gate queue'].push(gate.start - ver.end);
    rows['gate: before patch'].push(patch.start - gate.start);
    rows['gate: patch'].push(patch.end - patch.start);
    rows['gate: after patch'].push(gate.end - patch.end);
  }
  const med = (xs) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      50,
    );
  return { traced, medianMs: Object.fromEntries(STAGES.map((s) => [s, med(rows[s])])) };
}

// A cached phase promotes commits that fresh phases before it have verified. `count: true` = a phase that counts git
// processes and Redis round trips instead of timing.
export const DEFAULT_PHASES = [
  // Issue #15's latency row is read at 10 pushes/s.
  { mode: 'fresh', rate: 10, seconds: 10 },
  { mode: 'cached', rate: 10, seconds: 10 },
  { mode: 'fresh', rate: 3, seconds: 4, count: true },
  { mode: 'cached', rate: 3, seconds: 4, count: true },
  { mode: 'fresh', rate: 100, seconds: 3 },
  { mode: 'cached', rate: 100, seconds: 3 },
];

export async function benchE2E({
  phases = DEFAULT_PHASES,
  branches = 20,
  verifiers = 2,
  drainMs = 60_000,
  idleSeconds = 5,
  env = {},
} = {}) {
  const workDir = mkdtempSync(join(tmpdir(), 'gg-bench-e2e-'));
  const remote = createBareRemote(workDir);
  const key = createSshKey();
  // A home for the services' git processes: git reads $HOME/.gitconfig at every start, so writing a trace2 target
  // there for a few seconds counts the git processes (fetches…) of those seconds only.
  const gitHome = join(workDir, 'home');
  const traceDir = join(workDir, 'trace2');
  mkdirSync(gitHome);
  mkdirSync(traceDir);

  // Push j of a phase goes to branch j % branches, so a branch gets up to ceil(n / branches) commits per phase.
  const perBranch =
    phases.filter((p) => p.mode === 'fresh').reduce((n, p) => n + Math.ceil(Math.round(p.rate * p.seconds) / branches), 0) + 2;
  let t = Math.floor(Date.now() / 1000) - 3600;
  const root = makeCommit(remote, { message: 'root', key, time: t });
  // chains[i]: commits of branch i, each the child of the one before (all descend from root).
  const chains = [];
  for (let i = 0; i < branches; i++) {
    const chain = [];
    let parent = root.sha;
    for (let k = 0; k < perBranch; k++) {
      const c = makeCommit(remote, { parents: [parent], message: `b${i} ${k}`, key, time: ++t });
      chain.push(c.sha);
      parent = c.sha;
    }
    chains.push(chain);
  }
  const setRef = (branch, sha) => setBranch(remote, branch, sha);
  // Fresh pushes go to b<i>; cached pushes promote the same commits, in the same order, to p<i>.
  const fresh = Array.from({ length: branches }, (_, i) => `b${i}`);
  const promoted = Array.from({ length: branches }, (_, i) => `p${i}`);
  const cursor = { fresh: new Array(branches).fill(0), cached: new Array(branches).fill(0) };
  for (const b of [...fresh, ...promoted]) setRef(b, root.sha);
  const seed = benchSeed({
    namespace: NS,
    repoUrl: REPO_URL,
    apps: [...fresh, ...promoted].map((b) => ({ name: `app-${b}`, branch: b })),
    policyName: 'bench-signers',
    allowedSignersLine: key.allowedSignersLine(SIGNER),
  });

  // git itself must accept these commits, or the numbers mean nothing.
  writeFileSync(join(workDir, 'allowed_signers'), `${key.allowedSignersLine(SIGNER)}\n`);
  execFileSync(
    'git',
    ['-C', remote, '-c', `gpg.ssh.allowedSignersFile=${join(workDir, 'allowed_signers')}`, 'verify-commit', chains[0][0]],
    { stdio: 'ignore' },
  );

  const redis = await startTestRedis({ appendfsync: 'everysec' });
  const rclient = new Redis(redis.url);
  const collector = await startSpanCollector();
  const queuePrefix = `bench-${randomUUID().slice(0, 8)}`;
  const logs = [];
  let stack;
  try {
    stack = await startBenchStack({
      workDir,
      redisUrl: redis.url,
      repoUrl: REPO_URL,
      remote,
      seed,
      verifiers,
      queuePrefix,
      env: { HOME: gitHome, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, ...env },
      onLog: (service, line) => {
        logs.push(`${service} ${line}`);
        if (logs.length > 50) logs.shift();
      },
    });
  } catch (err) {
    await collector.close();
    rclient.disconnect();
    await redis.close();
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  }
  const pins = new Map(); // `${app}@${sha}` → time pinned
  const stopWatch = watchApplications(stack.sandbox, (type, app) => {
    if (type !== 'MODIFIED') return;
    const rev = app.spec?.source?.targetRevision;
    const k = `${app.metadata.name}@${rev}`;
    if (!pins.has(k)) pins.set(k, performance.now());
  });
  const heads = new Map();
  async function push(branch, sha, delivery = randomUUID()) {
    const before = heads.get(branch) ?? root.sha;
    heads.set(branch, sha);
    setRef(branch, sha);
    const body = JSON.stringify(pushPayload({ repoUrl: REPO_URL, fullName: 'bench/app', ref: `refs/heads/${branch}`, before, after: sha }));
    const res = await fetch(`${stack.receiverUrl}/webhooks/github`, {
      method: 'POST',
      headers: deliveryHeaders(stack.secrets[0], 'push', body, delivery),
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error(`receiver answered ${res.status}`);
  }
  const backlog = queueBacklog(rclient, queuePrefix);
  /** Until every key is pinned, or the queues are empty and nothing more can come (or the deadline). */
  async function settle(keys, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let idle = 0;
    while (Date.now() < deadline && keys.some((k) => !pins.has(k))) {
      await sleep(50);
      idle = (await backlog()) === 0 ? idle + 1 : 0;
      if (idle >= 10) break;
    }
    while (Date.now() < deadline && (await backlog()) > 0) await sleep(50);
  }

  const procs = () => stack.processes.map((p) => ({ name: p.name, pid: p.child.pid }));
  const selfCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  // CPU seconds per process: { self, children } (children = its git processes); this process runs the sandbox.
  const cpuSnap = () =>
    Object.fromEntries([...procs().map((p) => [p.name, cpuSplit(p.pid)]), ['bench+sandbox', { self: selfCpu(), children: 0 }]]);
  let idleRate = {}; // CPU seconds per second each process burns with nothing to do
  /** Marginal CPU per push in ms: the phase's CPU minus what the process would have burnt idle, / pushes. */
  const cpuPerPush = (a, b, secs, n) =>
    Object.fromEntries(
      Object.keys(b).map((k) => {
        const self = b[k].self - a[k].self - (idleRate[k]?.self ?? 0) * secs;
        const children = b[k].children - a[k].children - (idleRate[k]?.children ?? 0) * secs;
        return [k, { total: ((self + children) / n) * 1e3, self: (self / n) * 1e3, git: (children / n) * 1e3 }];
      }),
    );

  /**
   * Open loop: push j is sent at start + j/rate whatever happened to the others (no coordinated omission);
   * latency = the pin seen on the watch − the scheduled send time.
   */
  async function phase({ mode, rate, seconds, argo }) {
    const list = mode === 'fresh' ? fresh : promoted;
    // `argo`: a background "Argo CD" writes every Application during this phase (shared/dev/local-stack/src/argo-writer.ts).
    const writer = argo ? await startArgoWriter({ kubeconfig: stack.kubeconfig, namespace: NS, ...argo }) : undefined;
    const conflicts0 = await gateConflicts();
    const n = Math.round(rate * seconds);
    const sent = [];
    const inflight = [];
    const start = performance.now() + 50;
    const cpu0 = cpuSnap();
    const r0 = await redisStats(rclient);
    const k0 = stack.sandbox.requests().length;
    for (let j = 0; j < n; j++) {
      const at = start + (j * 1000) / rate;
      const wait = at - performance.now();
      if (wait > 1) await sleep(wait);
      const i = j % list.length;
      const k = cursor[mode][i]++;
      if (mode === 'cached' && k >= cursor.fresh[i]) throw new Error('cached phase ran out of verified commits');
      const sha = chains[i][k];
      const delivery = randomUUID();
      sent.push({ app: `app-${list[i]}`, sha, at, delivery });
      inflight.push(push(list[i], sha, delivery));
    }
    await Promise.all(inflight);
    const sendEnd = performance.now();
    const lastOf = new Map();
    for (const s of sent) lastOf.set(s.app, s.sha);
    await settle(
      [...lastOf].map(([app, sha]) => `${app}@${sha}`),
      drainMs,
    );
    const end = performance.now();
    await writer?.stop();
    const conflicts = (await gateConflicts()) - conflicts0;
    const cpu1 = cpuSnap();
    const r1 = await redisStats(rclient);
    const reqs = stack.sandbox.requests().slice(k0);
    const lat = [];
    let superseded = 0;
    let missing = 0;
    let lastPin = 0;
    for (const s of sent) {
      const p = pins.get(`${s.app}@${s.sha}`);
      if (p !== undefined) {
        lat.push(p - s.at);
        lastPin = Math.max(lastPin, p);
      } else if (lastOf.get(s.app) !== s.sha) superseded++;
      else missing++;
    }
    lat.sort((a, b) => a - b);
    const kube = {};
    for (const r of reqs) {
      const verb = r.method === 'GET' ? (/\/applications$/.test(r.path) ? 'LIST' : r.query.includes('watch') ? 'WATCH' : 'GET') : r.method;
      kube[verb] = (kube[verb] ?? 0) + 1;
    }
    const redisD = redisDelta(r0, r1, n, ['info', 'type', 'llen', 'zcard']);
    // Marginal CPU per push is worked out at the end, once the idle burn is known (see below).
    const cpuRaw = { a: cpu0, b: cpu1, secs: (end - start) / 1000, redisMs: redisD.cpu * 1e3 };
    const out = {
      mode,
      rate,
      pushes: n,
      sendSeconds: (sendEnd - start) / 1000,
      // Pushes that ended on the Application per second, from the first send to the last pin.
      throughput: lat.length + superseded > 0 ? n / ((Math.max(lastPin, sendEnd) - start) / 1000) : 0,
      settleSeconds: (end - sendEnd) / 1000,
      pinned: lat.length,
      superseded,
      missing,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat.at(-1),
      kube,
      conflicts,
      ...(writer ? { argo: { ...argo, writes: writer.stats() } } : {}),
      deliveries: sent.map((x) => x.delivery),
      cpuRaw,
      redis: redisD,
    };
    log(
      `e2e ${mode} @${rate}/s${writer ? ' + argo writer' : ''}: ${n} pushes, pinned ${lat.length}, superseded ${superseded}, missing ${missing}, conflicts ${conflicts}; p50 ${out.p50?.toFixed(1)} ms p99 ${out.p99?.toFixed(1)} ms; ${out.throughput.toFixed(1)} pushes/s settled`,
    );
    return out;
  }

  /** Counts git processes started during `fn`, by subcommand, per push. */
  async function countGit(fn, pushes) {
    startGitTrace(gitHome, traceDir);
    let res;
    try {
      res = await fn();
    } finally {
      stopGitTrace(gitHome);
    }
    const counts = Object.fromEntries(Object.entries(countTracedGit(traceDir).bySub).map(([sub, n]) => [sub, n / pushes]));
    return { res, counts };
  }

  const gateConflicts = async () =>
    (
      await Promise.all(
        stack.processes.filter((p) => p.service === 'gate').map((p) => metricValue(p.port, 'gitops_gate_kube_conflicts_total')),
      )
    ).reduce((a, b) => a + b, 0);
  const verifierPorts = () => stack.processes.filter((p) => p.service === 'verifier').map((p) => p.port);
  const cacheLookups = async (result) =>
    (
      await Promise.all(verifierPorts().map((port) => metricValue(port, 'gitops_gate_verdict_cache_lookups_total', `result="${result}"`)))
    ).reduce((a, b) => a + b, 0);

  try {
    // Warm-up: each Application gets its first pin (mirrors created, connections open, code paths compiled).
    for (const b of [...fresh, ...promoted]) await push(b, root.sha);
    await settle(
      [...fresh, ...promoted].map((b) => `app-${b}@${root.sha}`),
      60_000,
    );
    const notPinned = [...fresh, ...promoted].filter((b) => !pins.has(`app-${b}@${root.sha}`));
    if (notPinned.length) throw new Error(`warm-up: ${notPinned.length} Applications not pinned; logs:\n${logs.join('\n')}`);

    // CPU the services burn with nothing to do (polling, timers): measured before the phases and after them, the lower
    // of the two per process (a straggling GC or timer in one window would otherwise count as idle burn).
    const idleWindow = async () => {
      const a = cpuSnap();
      const t0 = performance.now();
      await sleep(idleSeconds * 1000);
      const b = cpuSnap();
      const secs = (performance.now() - t0) / 1000;
      return Object.fromEntries(
        Object.keys(b).map((k) => [k, { self: (b[k].self - a[k].self) / secs, children: (b[k].children - a[k].children) / secs }]),
      );
    };
    const idleBefore = await idleWindow();
    const results = [];
    // Git processes and Redis round trips per push are counted in phases marked `count` (git trace2 and MONITOR cost a
    // little, so those phases are not the timed ones).
    const git = {};
    const redisPerPush = {};
    for (const p of phases) {
      // Every phase starts with empty queues, so one phase's backlog does not end up in the next one's numbers.
      const deadline = Date.now() + drainMs;
      while ((await backlog()) > 0 && Date.now() < deadline) await sleep(100);
      if (p.count) {
        const n = Math.round(p.rate * p.seconds);
        const { res, counts } = await countGit(
          () => countRedisCommands(redis.url, async () => (await phase(p)).pushes, { ignore: [rclient] }),
          n,
        );
        git[p.mode] = counts;
        redisPerPush[p.mode] = res;
        continue;
      }
      const h0 = await cacheLookups('hit');
      const m0 = await cacheLookups('miss');
      const r = await phase(p);
      r.cache = { hits: (await cacheLookups('hit')) - h0, misses: (await cacheLookups('miss')) - m0 };
      results.push(r);
    }
    const drained = Date.now() + drainMs;
    while ((await backlog()) > 0 && Date.now() < drained) await sleep(100);
    const idleAfter = await idleWindow();
    idleRate = Object.fromEntries(
      Object.keys(idleBefore).map((k) => [
        k,
        idleBefore[k].self + idleBefore[k].children <= idleAfter[k].self + idleAfter[k].children ? idleBefore[k] : idleAfter[k],
      ]),
    );
    const idleCpu = Object.fromEntries(Object.entries(idleRate).map(([k, v]) => [k, (v.self + v.children) * 1e3]));
    log(
      `e2e idle cpu ms/s: ${Object.entries(idleCpu)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')}`,
    );
    for (const r of results) {
      r.cpuMsPerPush = cpuPerPush(r.cpuRaw.a, r.cpuRaw.b, r.cpuRaw.secs, r.pushes);
      r.cpuMsPerPush.redis = { total: r.cpuRaw.redisMs, self: r.cpuRaw.redisMs, git: 0 };
      delete r.cpuRaw;
      log(
        `e2e ${r.mode} @${r.rate}/s cpu ms/push: ${Object.entries(r.cpuMsPerPush)
          .map(([k, v]) => `${k} ${v.total.toFixed(1)}${v.git > 0.05 ? ` (git ${v.git.toFixed(1)})` : ''}`)
          .join(', ')}`,
      );
    }
    // Stopping the services flushes their last spans to the collector.
    stopWatch();
    await stack.stop();
    for (const r of results) {
      r.stages = stageBreakdown(collector.spans, r.deliveries);
      delete r.deliveries;
    }
    return { branches, verifiers, idleCpu, phases: results, gitPerPush: git, redisPerPush };
  } finally {
    stopWatch();
    await stack.stop();
    await collector.close();
    rclient.disconnect();
    await redis.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rate = Number(process.argv[2] ?? 100);
  const seconds = Number(process.argv[3] ?? 10);
  const r = process.argv[2]
    ? await benchE2E({
        phases: [
          { mode: 'fresh', rate, seconds },
          { mode: 'cached', rate, seconds },
        ],
      })
    : await benchE2E();
  console.log(JSON.stringify(r, null, 2));
}
