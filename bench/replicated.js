// Receiver row with and without a replica: the cost of "acknowledged means replicated". The same built receiver
// (services/receiver/dist/main.js) in front of (a) one redis-server, (b) a master with one replica, where every 202
// waits for `WAIT 1` (REDIS_WAIT_REPLICAS=auto sees the replica). Same load generator, strictly alternating rounds
// (A B A B …): every two neighbouring rounds (A B and B A alike) give one ratio, so a burst of load from other processes
// lands in the ratios of the rounds it overlapped on both sides, and "A ran first" cancels out. The figure is the
// median of those ratios, with their interquartile range and extremes as the spread.
//
//   npm run build && node bench/replicated.js [--quick]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, startRedisNode } from '@gitops-gate/testing';
import { nonceSource, writeSignedPushPool } from './lib/pipeline.js';
import { hasWrk, loadRound } from './receiver.js';
import { log, median, REPO_ROOT, resetRedis, startNode, stopChild } from './lib/util.js';

/** Quartiles of a list of numbers (linear interpolation). */
function spread(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => {
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return { median: at(0.5), q1: at(0.25), q3: at(0.75), min: s[0], max: s[s.length - 1], n: s.length };
}

/**
 * Ratios replicated / solo of every two neighbouring rounds of an alternating sequence (A B A B …: B/A, then B/A of
 * the next A, …), for throughput and for p50 / p99 latency.
 */
export function neighbourRatios(sequence) {
  const couples = [];
  for (let i = 1; i < sequence.length; i++) {
    const [a, b] = [sequence[i - 1], sequence[i]];
    if (a.who === b.who) continue;
    couples.push(a.who === 'solo' ? [a, b] : [b, a]);
  }
  const pairs = couples.map(([solo, repl]) => repl.rate / solo.rate);
  return {
    pairs,
    ratio: spread(pairs).median,
    rateSpread: spread(pairs),
    p50Spread: spread(couples.map(([solo, repl]) => repl.p50ms / solo.p50ms)),
    p99Spread: spread(couples.map(([solo, repl]) => repl.p99ms / solo.p99ms)),
  };
}

export async function benchReplicated({ seconds = 3, rounds = 8, warmup = 2, connections = 64 } = {}) {
  const tool = process.env.BENCH_LOADGEN === 'autocannon' || !hasWrk() ? 'autocannon' : 'wrk';
  const dir = mkdtempSync(join(tmpdir(), 'gg-bench-repl-'));
  const aof = () => ['--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'];
  const solo = await startRedisNode({ args: aof });
  const master = await startRedisNode({ args: aof });
  const replica = await startRedisNode({ args: () => [...aof(), '--replicaof', '127.0.0.1', String(master.port)] });
  const clients = { solo: new Redis(solo.port, '127.0.0.1'), replicated: new Redis(master.port, '127.0.0.1') };
  for (const c of Object.values(clients)) c.on('error', () => undefined);
  const secret = randomBytes(24).toString('hex');
  const { pool, poolFile } = writeSignedPushPool(dir, secret);
  const procs = {};
  const ports = {};
  try {
    for (const [who, port] of [
      ['solo', solo.port],
      ['replicated', master.port],
    ]) {
      ports[who] = await freePort();
      procs[who] = await startNode(
        join(REPO_ROOT, 'services/receiver/dist/main.js'),
        {
          LOG_LEVEL: 'warn',
          REDIS_URL: `redis://127.0.0.1:${port}`,
          QUEUE_PREFIX: `bench-${who}`,
          WEBHOOK_SECRETS: secret,
          RECEIVER_HOST: '127.0.0.1',
          RECEIVER_PORT: String(ports[who]),
          MAX_QUEUE_DEPTH: '100000000',
          REDIS_WAIT_REPLICAS: 'auto',
        },
        `http://127.0.0.1:${ports[who]}/healthz`,
        { name: `receiver-${who}` },
      );
    }
    // The replica must be online before its WAITs can succeed.
    for (let i = 0; i < 200 && !/slave0:.*state=online/.test(await clients.replicated.info('replication')); i++) await sleep(50);
    const url = (who) => `http://127.0.0.1:${ports[who]}`;
    const nextNonce = nonceSource();
    for (const who of ['solo', 'replicated']) await loadRound(tool, url(who), poolFile, pool, warmup, connections, nextNonce());
    // rounds = pairs: 2 × rounds alternating rounds, solo first.
    const sequence = [];
    for (let r = 0; r < 2 * rounds; r++) {
      const who = r % 2 === 0 ? 'solo' : 'replicated';
      await resetRedis(clients[who]);
      await sleep(300);
      const res = await loadRound(tool, url(who), poolFile, pool, seconds, connections, nextNonce());
      const jobs = await clients[who].llen(`bench-${who}:verify:wait`);
      if (jobs < res.ok) throw new Error(`${who}: ${res.ok} deliveries answered 2xx but only ${jobs} jobs are in Redis`);
      sequence.push({ who, rate: res.ok / res.seconds, ...res });
      log(
        `receiver ${who.padEnd(10)} ${(res.ok / res.seconds).toFixed(0)}/s (2xx ${res.ok}, other ${res.bad}), p50 ${res.p50ms.toFixed(2)} ms p99 ${res.p99ms.toFixed(2)} ms`,
      );
    }
    const results = { solo: sequence.filter((x) => x.who === 'solo'), replicated: sequence.filter((x) => x.who === 'replicated') };
    // Every 2xx of the replicated receiver is on the replica too.
    const replicaClient = new Redis(replica.port, '127.0.0.1');
    const onReplica = await replicaClient.llen('bench-replicated:verify:wait');
    replicaClient.disconnect();
    const summary = {
      tool,
      solo: {
        rate: median(results.solo.map((x) => x.rate)),
        p50ms: median(results.solo.map((x) => x.p50ms)),
        p99ms: median(results.solo.map((x) => x.p99ms)),
      },
      replicated: {
        rate: median(results.replicated.map((x) => x.rate)),
        p50ms: median(results.replicated.map((x) => x.p50ms)),
        p99ms: median(results.replicated.map((x) => x.p99ms)),
        jobsOnReplica: onReplica,
      },
    };
    Object.assign(summary, neighbourRatios(sequence));
    const pct = (s) => `${s.median.toFixed(2)}× (IQR ${s.q1.toFixed(2)}–${s.q3.toFixed(2)}, range ${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
    log(
      `receiver without replica ${summary.solo.rate.toFixed(0)}/s (p50 ${summary.solo.p50ms.toFixed(2)} ms, p99 ${summary.solo.p99ms.toFixed(2)} ms); ` +
        `with replica + WAIT 1 ${summary.replicated.rate.toFixed(0)}/s (p50 ${summary.replicated.p50ms.toFixed(2)} ms, p99 ${summary.replicated.p99ms.toFixed(2)} ms)`,
    );
    log(
      `WAIT cost over ${summary.pairs.length} neighbouring-round ratios (${rounds} A B pairs of ${seconds} s): throughput ${pct(summary.rateSpread)}, ` +
        `p50 latency ${pct(summary.p50Spread)}, p99 latency ${pct(summary.p99Spread)}; jobs on the replica ${onReplica}`,
    );
    return summary;
  } finally {
    for (const p of Object.values(procs)) await stopChild(p.child).catch(() => undefined);
    for (const c of Object.values(clients)) c.disconnect();
    for (const n of [replica, master, solo]) await n.stop(true);
    for (const n of [replica, master, solo]) rmSync(n.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  await benchReplicated(quick ? { seconds: 2, rounds: 2, warmup: 1 } : {});
}
