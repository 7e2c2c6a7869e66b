// `npm run bench`: every benchmark, one after another, then one table of what this run measured (ratios are
// measured within the run, contenders interleaved; nothing here asserts on time). See bench/README.md.
//
//   node bench/run.js [receiver] [e2e] [argo] [scale] [verify] [cache] [fanout] [admission] [soak] [--quick] [--json FILE]
// `soak` (20 minutes) runs only when named; SOAK_SECONDS / SOAK_RATE / SOAK_WARMUP_SECONDS shorten it (bench/soak.js).
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchReceiver } from './receiver.js';
import { benchReplicated } from './replicated.js';
import { benchE2E, DEFAULT_PHASES } from './e2e.js';
import { benchScale } from './scale.js';
import { benchBundles, benchVerify } from './verify.js';
import { benchCache } from './cache.js';
import { benchAdmission } from './admission.js';
import { benchSoak } from './soak.js';
import { benchFanOut } from './fan-out.js';
import { targetTable } from './targets.js';
import { fmt, log } from './lib/util.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : join(tmpdir(), 'gitops-gate-bench.json');
const picked = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--json');
const want = (name) => picked.length === 0 || picked.includes(name);

// --quick: the same phases at 40% of their length (10 s → 4 s, 4 s → 2 s, 3 s → 1 s).
const E2E_PHASES = quick ? DEFAULT_PHASES.map((p) => ({ ...p, seconds: Math.max(1, Math.round(p.seconds * 0.4)) })) : DEFAULT_PHASES;

// Row 6: the same fresh pushes with and without a background "Argo CD" writing all 40 Applications, interleaved in one
// stack. Argo CD refreshes each Application every 120–180 s; the writers here do it every 1–3 s (≈ 75× that) and every
// 0.25–0.75 s (≈ 300×); 30% of refreshes are syncs (a burst of 4 writes 50 ms apart), 10% of writes whole-object PUTs.
const ARGO_WRITERS = [
  {
    label: 'each every 1–3 s',
    intervalMs: [1000, 3000],
    syncProbability: 0.3,
    burst: 4,
    burstGapMs: 50,
    putProbability: 0.1,
    putDelayMs: 5,
  },
  {
    label: 'each every 0.25–0.75 s',
    intervalMs: [250, 750],
    syncProbability: 0.3,
    burst: 4,
    burstGapMs: 50,
    putProbability: 0.1,
    putDelayMs: 5,
  },
];
const argoRound = (seconds) => [
  { mode: 'fresh', rate: 3, seconds },
  ...ARGO_WRITERS.map((argo) => ({ mode: 'fresh', rate: 3, seconds, argo })),
];
const ARGO_PHASES = quick ? argoRound(4) : [...argoRound(10), ...argoRound(10).reverse()];

const started = Date.now();
const load0 = loadavg()[0];
const r = {};
const failures = [];
async function step(name, fn) {
  if (!want(name)) return;
  log(`── ${name}`);
  try {
    r[name] = await fn();
  } catch (err) {
    failures.push(`${name}: ${err.message}`);
    log(`${name} failed: ${err.stack}`);
  }
}

await step('receiver', () => benchReceiver(quick ? { seconds: 2, rounds: 1, warmup: 1 } : { seconds: 4, rounds: 5, warmup: 2 }));
// Row 1b: the receiver with and without a replica (every 202 waits for WAIT 1 on the replicated one).
await step('replicated', () => benchReplicated(quick ? { seconds: 2, rounds: 2, warmup: 1 } : { seconds: 3, rounds: 8, warmup: 2 }));
await step('e2e', () => benchE2E({ phases: E2E_PHASES, drainMs: quick ? 30_000 : 60_000 }));
await step('argo', () => benchE2E({ phases: ARGO_PHASES, drainMs: quick ? 30_000 : 60_000, idleSeconds: 1 }));
await step('scale', () => benchScale(quick ? { jobs: 200, rounds: 1 } : { jobs: 400, rounds: 3 }));
await step('verify', async () => ({
  commits: await benchVerify(quick ? { roundMs: 400, rounds: 2 } : { roundMs: 1000, rounds: 3 }),
  bundles: await benchBundles({ seconds: quick ? 2 : 6 }),
}));

await step('cache', () => benchCache({ seconds: quick ? 1 : 3 }));
// Row 7, then the same load against a bare node:https webhook: the platform's floor on this machine at this load.
await step('admission', async () => {
  const opts = quick ? { seconds: 3, warmupSeconds: 1 } : { seconds: 10, warmupSeconds: 2 };
  const ours = await benchAdmission(opts);
  return { ...ours, anchor: await benchAdmission({ ...opts, anchor: true }) };
});
const envNum = (name) => (process.env[name] ? Number(process.env[name]) : undefined);
if (picked.includes('soak'))
  await step('soak', () =>
    benchSoak({
      seconds: envNum('SOAK_SECONDS'),
      rate: envNum('SOAK_RATE'),
      warmupSeconds: envNum('SOAK_WARMUP_SECONDS'),
      sampleSeconds: envNum('SOAK_SAMPLE_SECONDS'),
    }),
  );
await step('fanout', () => benchFanOut({ apps: quick ? 100 : 500 }));

// ── the table ────────────────────────────────────────────────────────────────────────────────────────────────────
const rows = [];
const x = (v) => (v === undefined || Number.isNaN(v) ? 'n/a' : `${v.toFixed(v < 10 ? 2 : 1)}×`);
const ms = (v) =>
  v === undefined || v === null || Number.isNaN(v) ? 'n/a' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const met = (ok) => (ok === undefined ? '' : ok ? 'yes' : 'NO');
if (r.receiver) {
  const a = r.receiver;
  rows.push([
    '1',
    `receiver: signed deliveries durably queued /s (${a.tool} ${a.connections} conns, median of ${a.rounds} interleaved ${a.seconds} s pairs)`,
    `${fmt(a.ours)}/s`,
    `bare anchor ${fmt(a.anchor)}/s`,
    x(a.ratio),
    '≥ 0.90×',
    met(a.ratio >= 0.9),
  ]);
}
if (r.replicated) {
  const w = r.replicated;
  const sp = (s) => `${x(s.median)} (IQR ${s.q1.toFixed(2)}–${s.q3.toFixed(2)}, range ${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
  rows.push([
    '1b',
    `receiver with a replica, every 202 after WAIT 1, vs one Redis (${w.tool}; median of ${w.pairs.length} neighbouring-round ratios, rounds A B A B …)`,
    `${fmt(w.replicated.rate)}/s, p50 ${ms(w.replicated.p50ms)}`,
    `without replica ${fmt(w.solo.rate)}/s, p50 ${ms(w.solo.p50ms)}; p50 latency ${sp(w.p50Spread)}`,
    sp(w.rateSpread),
    '',
    '',
  ]);
}
if (r.e2e) {
  r.e2e.phases.forEach((p, i) => {
    const target = p.mode === 'cached' ? 'p99 ≤ 50 ms' : '';
    const ours = `p50 ${ms(p.p50)}, p99 ${ms(p.p99)}`;
    const detail = `${p.pushes} pushes: ${p.pinned} pinned, ${p.superseded} superseded, ${p.missing} not pinned; ${p.throughput.toFixed(1)} pushes/s settled${p.mode === 'cached' ? `; cache hits ${p.cache.hits}/${p.cache.hits + p.cache.misses}` : ''}`;
    rows.push([
      `2${'abcdefgh'[i]}`,
      `e2e ${p.mode} @${p.rate} pushes/s: webhook → Application patched`,
      ours,
      detail,
      '',
      target,
      target ? met(p.p99 <= 50) : '',
    ]);
  });
}
if (r.argo) {
  // Pool the rounds of each kind (with / without the writer) for the percentiles' inputs: report per kind the median
  // of the rounds' p50 and the worst p99, and conflicts per pin over all rounds.
  const kinds = [undefined, ...ARGO_WRITERS.map((w) => w.label)].map((label) => r.argo.phases.filter((p) => p.argo?.label === label));
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  kinds.forEach((ps, i) => {
    if (ps.length === 0) return;
    const pinned = ps.reduce((n, p) => n + p.pinned, 0);
    const missing = ps.reduce((n, p) => n + p.missing, 0);
    const conflicts = ps.reduce((n, p) => n + p.conflicts, 0);
    const writes = ps.reduce((n, p) => n + (p.argo ? p.argo.writes.statusPatches + p.argo.writes.puts : 0), 0);
    const putConflicts = ps.reduce((n, p) => n + (p.argo?.writes.putConflicts ?? 0), 0);
    const detail = `${ps.reduce((n, p) => n + p.pushes, 0)} pushes in ${ps.length} round(s): ${pinned} pinned, ${missing} not pinned (lost); ${conflicts} conflicts = ${(conflicts / Math.max(1, pinned)).toFixed(2)} per pin${i ? `; writer: ${writes} writes, ${putConflicts} stale PUTs refused` : ''}`;
    const what = i
      ? `e2e fresh @3 pushes/s + Argo CD writer on all 40 Applications (${ps[0].argo.label}, 30% syncs, 10% PUTs)`
      : 'e2e fresh @3 pushes/s, no other writer (same stack, interleaved)';
    rows.push([
      `6${'abc'[i]}`,
      what,
      `p50 ${ms(med(ps.map((p) => p.p50)))}, p99 ${ms(Math.max(...ps.map((p) => p.p99)))}`,
      detail,
      '',
      '0 lost',
      met(missing === 0),
    ]);
  });
}
if (r.scale) {
  const s = r.scale;
  rows.push([
    '3',
    `scale: ${s.jobs} verify jobs drained, 2 verifier processes vs 1 (median of ${s.rounds} interleaved pairs)`,
    `${fmt(s.two)} jobs/s`,
    `1 process ${fmt(s.one)} jobs/s`,
    x(s.ratio),
    '≥ 1.8×',
    met(s.ratio >= 1.8),
  ]);
  // Warm: the commit is in the mirror already; CPU of the verifier and its git children, and git processes started.
  const warmMs = s.nodeMsPerJob + s.gitMsPerJob;
  rows.push([
    '3b',
    'warm verify job (commit in the mirror): CPU ms, git processes per job',
    `${warmMs.toFixed(2)} ms, ${s.gitProcsPerJob.toFixed(3)} git`,
    `node ${s.nodeMsPerJob.toFixed(2)} ms + git children ${s.gitMsPerJob.toFixed(2)} ms; processes ${
      Object.entries(s.gitProcs ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
    '',
    '≤ 2 ms, no git process',
    met(warmMs <= 2 && s.gitProcsPerJob === 0),
  ]);
  if (s.coalesce) {
    const c = s.coalesce;
    rows.push([
      '3c',
      `duplicate verifications coalesced: ${c.jobs} simultaneous jobs for one (commit, policy, trust) on ${c.processes} verifier processes`,
      `${c.verified} verification(s)`,
      `${c.coalesced} answered in flight, ${c.cached} from the verdict cache`,
      '',
      '1 verification, 49 answered from it',
      met(c.verified === 1),
    ]);
  }
}
if (r.verify) {
  r.verify.commits.forEach((c, i) => {
    const row = c.row ?? `4${'abc'[i]}`;
    rows.push([
      row,
      `${c.method} commit verification, per core (${c.commits} fixture commits)`,
      `${fmt(c.ours)}/s (${fmt(c.oursPerCpuSecond)}/CPU-s)`,
      c.git ? `${c.baseline} ${fmt(c.git, 1)}/s` : c.baseline,
      x(c.ratio),
      '≥ 10×',
      c.ratio ? met(c.ratio >= 10) : 'n/a',
    ]);
    // Issue #15: gitsign has no git baseline here (no gitsign binary); its target is an absolute rate per core, read
    // from CPU time so that other load on a shared machine does not count against it.
    if (c.method === 'gitsign')
      rows.push([
        `${row}′`,
        'gitsign commit verification, per core (verifications per CPU-second of this process)',
        `${fmt(c.oursPerCpuSecond)}/CPU-s`,
        `wall ${fmt(c.ours)}/s`,
        '',
        '≥ 1,000/s per core',
        met(c.oursPerCpuSecond >= 1000),
      ]);
  });
  const b = r.verify.bundles;
  rows.push([
    '4d',
    `Sigstore bundle verification, fresh bundles (${b.bundles} conformance bundles)`,
    `${fmt(b.ours)}/s`,
    `@sigstore/verify ${fmt(b.theirs)}/s`,
    x(b.ratio),
    '≥ 12×',
    met(b.ratio >= 12),
  ]);
}
if (r.admission) {
  const a = r.admission;
  rows.push([
    '7',
    `admission: Pod AdmissionReviews over HTTPS answered from the verdict cache @${a.rate}/s (${a.sent} reviews, load ${a.loadavg.toFixed(1)})`,
    `p50 ${ms(a.p50)}, p99 ${ms(a.p99)}`,
    `p95 ${ms(a.p95)}; inside the webhook p50 ${ms(a.insideP50)}, p99 ${ms(a.insideP99)}; CPU per review: webhook ${a.serverCpuUsPerReview.toFixed(0)} µs, decision ${a.decisionCpuUsPerReview.toFixed(1)} µs, generator ${a.clientCpuUsPerReview.toFixed(0)} µs; ${a.denied} denied; bare node:https anchor at the same load: p99 ${ms(a.anchor.p99)}, ${a.anchor.serverCpuUsPerReview.toFixed(0)} µs/review`,
    '',
    'p99 ≤ 5 ms',
    met(a.p99 <= 5),
  ]);
}
if (r.cache) {
  const c = r.cache;
  rows.push([
    '5',
    `cached verdicts (Redis, ${c.inflight} lookups in flight, one process)`,
    `${fmt(c.cached)}/s`,
    `fresh SSH verification ${fmt(c.fresh)}/s`,
    x(c.ratio),
    '≥ 20,000/s',
    met(c.cached >= 20_000),
  ]);
}

if (r.fanout) {
  const f = r.fanout;
  rows.push([
    '8',
    `fan-out: one push, ${f.apps} Applications following the branch (whole stack; patches paced at ${f.qps}/s, burst ${f.burst})`,
    `p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`,
    `${f.pinned}/${f.apps} pinned, last at ${ms(f.last)}`,
    '',
    'all pinned, p99 ≤ 2 s',
    met(f.pinned === f.apps && f.p99 <= 2000),
  ]);
}
if (r.soak) {
  const k = r.soak;
  const first = k.samples.find((x) => x.t >= k.warmup);
  const last = k.samples[k.samples.length - 1];
  rows.push([
    '9',
    `soak: ${k.rate} pushes/s offered for ${k.seconds} s, Redis used_memory after a ${k.warmup} s warm-up (flat: slope < ${k.flatKiBPerMin} KiB/min, backlog not growing)`,
    `${first ? first.usedMiB.toFixed(1) : 'n/a'} → ${last ? last.usedMiB.toFixed(1) : 'n/a'} MiB, ${k.kibPerMin?.toFixed(1)} KiB/min`,
    `${k.sent} pushes; decided ${k.decidedPerSec?.toFixed(1)}/s after warm-up, backlog ${first?.backlog} → ${last?.backlog}; ${k.verdict}`,
    '',
    'flat',
    k.verdict.startsWith('flat')
      ? 'yes'
      : k.verdict.startsWith('NOT flat: the pipeline fell behind')
        ? 'n/a'
        : k.verdict.startsWith('NOT')
          ? 'NO'
          : 'n/a',
  ]);
}

const header = ['#', 'benchmark', 'ours', 'baseline / detail', 'ratio', 'target', 'met'];
const lines = [];
lines.push(
  `gitops-gate benchmarks${quick ? ' (--quick)' : ''} — node ${process.version}, ${availableParallelism()} CPUs, load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end, ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
lines.push('(the machine is shared: absolute rates move with other load; ratios are measured in this run with the contenders interleaved)');
lines.push('');
lines.push(`| ${header.join(' | ')} |`);
lines.push(`|${header.map(() => '---').join('|')}|`);
for (const row of rows) lines.push(`| ${row.join(' | ')} |`);

// ── issue #15's targets, every row (see targets.js) ───────────────────────────────────────────────────────────────
lines.push('');
lines.push('Targets of issue #15 (a row not measured in this run names the benchmark that measures it):');
lines.push('');
lines.push(...targetTable(r));

// ── what one unit of work costs (the numbers behind "what bounds it") ────────────────────────────────────────────
const costs = [];
if (r.receiver) {
  const a = r.receiver;
  const rt = (w) =>
    `${a.redisPerDelivery[w].roundTrips.toFixed(1)} round trips (${Object.entries(a.redisPerDelivery[w].sent)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ')}), ${a.redisPerDelivery[w].inScripts.toFixed(1)} commands inside scripts`;
  costs.push(
    `per delivery, receiver: ${fmt(a.cpuPerDeliveryUs.ours)} µs CPU (anchor ${fmt(a.cpuPerDeliveryUs.anchor)} µs); Redis ${rt('ours')}; anchor ${rt('anchor')}; Redis CPU ${fmt(a.redisCpuPerDeliveryUs.ours)} µs (anchor ${fmt(a.redisCpuPerDeliveryUs.anchor)} µs); p99 under load ${ms(a.p99ms.ours)} (anchor ${ms(a.p99ms.anchor)})`,
  );
}
if (r.e2e) {
  const e = r.e2e;
  for (const p of e.phases.filter((q) => q.rate < 100)) {
    const cpu = Object.entries(p.cpuMsPerPush)
      .map(([k, v]) => `${k} ${v.total.toFixed(1)}${v.git > 0.05 ? ` (${v.git.toFixed(1)} in git)` : ''}`)
      .join(', ');
    const kube = Object.entries(p.kube)
      .map(([k, v]) => `${k} ${(v / p.pushes).toFixed(2)}`)
      .join(', ');
    costs.push(
      `per push, e2e ${p.mode} @${p.rate}/s: CPU ms ${cpu} (marginal, idle burn subtracted; idle burn ms/s: ${Object.entries(e.idleCpu)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(
          ', ',
        )}); Kubernetes API requests per push ${kube} → ${((p.kube.PATCH ?? 0) / Math.max(1, p.pinned)).toFixed(2)} writes per pin`,
    );
  }
  for (const mode of Object.keys(e.gitPerPush ?? {})) {
    const g = e.gitPerPush[mode];
    const total = Object.values(g).reduce((s, v) => s + v, 0);
    const rp = e.redisPerPush[mode];
    costs.push(
      `per push, e2e ${mode}: ${total.toFixed(1)} git processes (${Object.entries(g)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(
          ', ',
        )}); Redis ${rp.roundTrips.toFixed(1)} round trips + ${rp.inScripts.toFixed(1)} commands inside scripts (top: ${Object.entries(
        rp.sent,
      )
        .slice(0, 6)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')})`,
    );
  }
}
if (r.scale) {
  costs.push(
    `per verify job (warm mirror, SSH): ${r.scale.nodeMsPerJob.toFixed(1)} ms CPU in the verifier process + ${r.scale.gitMsPerJob.toFixed(1)} ms in its git children`,
  );
  const g = r.scale.gitRead;
  costs.push(
    `per mirror read: spawning \`git cat-file commit\` ${g.spawned.wallMs.toFixed(2)} ms wall, ${g.spawned.cpuMs.toFixed(2)} ms Node CPU; a request to a persistent \`git cat-file --batch\` ${g.batch.wallMs.toFixed(2)} ms, ${g.batch.cpuMs.toFixed(2)} ms`,
  );
}
if (costs.length) {
  lines.push('');
  lines.push('What one unit of work costs in this run:');
  for (const c of costs) lines.push(`- ${c}`);
}
if (failures.length) {
  lines.push('');
  lines.push('Benchmarks that did not complete:');
  for (const f of failures) lines.push(`- ${f}`);
}
console.log(lines.join('\n'));
writeFileSync(
  jsonFile,
  JSON.stringify(
    {
      when: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      loadavg: [load0, loadavg()[0]],
      quick,
      results: r,
      failures,
    },
    null,
    2,
  ),
);
console.log(`\nraw results: ${jsonFile}`);
process.exit(failures.length ? 1 : 0);
