// Issue #15's target table, printed by `npm run bench` with now / target / met for EVERY row. A row whose benchmark did
// not run in this invocation (or belongs to a benchmark not written yet) prints "see <file>" instead of a number.
// To add or fill a row: append to TARGETS (or give an existing row a `measure`) — nothing else in run.js changes.
//
// measure(r) gets the run's raw results ({ receiver, e2e, scale, verify, cache, fanout, … }) and returns
// { now: 'text', met: boolean } or undefined when its inputs are absent.

const ms = (v) =>
  v === undefined || v === null || Number.isNaN(v) ? 'n/a' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const both = (a, b) => (a && b ? { now: `${a.now} / ${b.now}`, met: a.met && b.met } : undefined);

/** e2e phases of one mode and rate (the first one that is not a counting phase). */
const phaseOf = (r, mode, rate) =>
  r.e2e?.phases.find((p) => p.mode === mode && p.rate === rate && !p.count) ??
  r.e2e?.phases.find((p) => p.mode === mode && p.rate === rate);
/** CPU per push over every process (services, their git children, Redis; not the benchmark/sandbox process). */
const cpuAll = (p) =>
  p?.cpuMsPerPush
    ? Object.entries(p.cpuMsPerPush)
        .filter(([k]) => k !== 'bench+sandbox')
        .reduce((s, [, v]) => s + v.total, 0)
    : undefined;
/** The lowest-rate phase of a mode (CPU per push is read where the pipeline is not saturated). */
const calmPhase = (r, mode) =>
  r.e2e?.phases.filter((p) => p.mode === mode && p.rate < 100 && !p.count && p.cpuMsPerPush).sort((a, b) => a.rate - b.rate)[0];

export const TARGETS = [
  {
    row: 'CPU per push, all services, fresh / cached',
    target: '≤ 10 ms / ≤ 4 ms',
    see: 'bench/e2e.js',
    measure: (r) => {
      const f = cpuAll(calmPhase(r, 'fresh'));
      const c = cpuAll(calmPhase(r, 'cached'));
      return f === undefined || c === undefined ? undefined : { now: `${f.toFixed(1)} ms / ${c.toFixed(1)} ms`, met: f <= 10 && c <= 4 };
    },
  },
  {
    row: 'e2e saturation on 2 cores (settled), fresh / cached',
    target: '≥ 150 / ≥ 400 pushes/s',
    see: 'bench/e2e.js',
    measure: (r) => {
      const f = phaseOf(r, 'fresh', 100);
      const c = phaseOf(r, 'cached', 100);
      if (!f || !c) return undefined;
      // Offered 100/s: settling at the offered rate means saturation was not reached (not enough offered to say).
      return {
        now: `${f.throughput.toFixed(0)} / ${c.throughput.toFixed(0)} pushes/s (offered 100/s; ${f.missing + c.missing} not pinned)`,
        met: f.throughput >= 150 && c.throughput >= 400 && f.missing + c.missing === 0,
      };
    },
  },
  {
    row: 'e2e latency at 10 pushes/s, p99 fresh / cached',
    target: '≤ 100 ms / ≤ 50 ms',
    see: 'bench/e2e.js',
    measure: (r) => {
      const f = phaseOf(r, 'fresh', 10);
      const c = phaseOf(r, 'cached', 10);
      return both(
        f && { now: ms(f.p99), met: f.p99 <= 100 && f.missing === 0 },
        c && { now: ms(c.p99), met: c.p99 <= 50 && c.missing === 0 },
      );
    },
  },
  {
    row: 'warm verify job (commit in the mirror)',
    target: '≤ 2 ms CPU, no git process',
    see: 'bench/scale.js',
    measure: (r) =>
      r.scale
        ? {
            now: `${(r.scale.nodeMsPerJob + r.scale.gitMsPerJob).toFixed(1)} ms CPU (${r.scale.gitMsPerJob.toFixed(1)} in git, ${(r.scale.gitProcsPerJob ?? 0).toFixed(2)} git processes per job)`,
            // "No git process" is counted (trace2), not inferred from CPU time; the same rule as run.js' row 3b.
            met: r.scale.nodeMsPerJob + r.scale.gitMsPerJob <= 2 && r.scale.gitProcsPerJob === 0,
          }
        : undefined,
  },
  {
    row: '2 verifier processes vs 1',
    target: '≥ 1.8×',
    see: 'bench/scale.js',
    measure: (r) => (r.scale ? { now: `${r.scale.ratio.toFixed(2)}×`, met: r.scale.ratio >= 1.8 } : undefined),
  },
  {
    row: 'receiver vs bare anchor (one round trip intake)',
    target: '≥ 0.90×',
    see: 'bench/receiver.js',
    measure: (r) =>
      r.receiver
        ? {
            now: `${r.receiver.ratio.toFixed(2)}× (${r.receiver.redisPerDelivery.ours.roundTrips.toFixed(1)} Redis round trips per delivery)`,
            met: r.receiver.ratio >= 0.9,
          }
        : undefined,
  },
  {
    row: 'fan-out: one push, 500 Applications',
    target: 'all 500 pinned, p99 ≤ 2 s, paced by QPS/burst',
    see: 'bench/fan-out.js',
    measure: (r) =>
      r.fanout
        ? {
            now: `${r.fanout.pinned}/${r.fanout.apps} pinned, p99 ${ms(r.fanout.p99)} (QPS ${r.fanout.qps}, burst ${r.fanout.burst})`,
            met: r.fanout.pinned === r.fanout.apps && r.fanout.p99 <= 2000,
          }
        : undefined,
  },
  {
    row: 'duplicate verifications coalesced across verifier replicas',
    target: '50 simultaneous jobs → 1 verification',
    see: 'bench/scale.js',
    // scale.js runs the coalescing round on its verifier processes and reports it as `scale.coalesce`.
    measure: (r) => {
      const c = r.scale?.coalesce;
      return c ? { now: `${c.jobs} jobs → ${c.verified} verification(s) on ${c.processes} processes`, met: c.verified === 1 } : undefined;
    },
  },
  {
    row: 'gitsign commit verification per core',
    target: '≥ 1,000/s',
    see: 'bench/verify.js',
    measure: (r) => {
      const g = r.verify?.commits.find((c) => c.method === 'gitsign');
      return g ? { now: `${g.ours.toFixed(0)}/s`, met: g.ours >= 1000 } : undefined;
    },
  },
  {
    row: 'Sigstore bundles vs @sigstore/verify',
    target: '≥ 12×',
    see: 'bench/verify.js',
    measure: (r) => (r.verify?.bundles ? { now: `${r.verify.bundles.ratio.toFixed(1)}×`, met: r.verify.bundles.ratio >= 12 } : undefined),
  },
];

/** The markdown lines of the target table for this run's results. */
export function targetTable(results) {
  const lines = ['| row | now | target | met |', '|---|---|---|---|'];
  for (const t of TARGETS) {
    let m;
    try {
      m = t.measure(results);
    } catch {
      m = undefined;
    }
    lines.push(
      `| ${t.row} | ${m ? m.now : `see ${t.see}`} | ${t.target} | ${m ? (m.met ? 'yes' : 'NO') : 'NO (not measured in this run)'} |`,
    );
  }
  return lines;
}
