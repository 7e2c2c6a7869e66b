// Receiver row with and without a replica: the cost of "acknowledged means replicated". The same built receiver
// (services/receiver/dist/main.js) in front of (a) one redis-server, (b) a master with one replica, where every 202
// waits for `WAIT 1` (REDIS_WAIT_REPLICAS=auto sees the replica). Same load generator, interleaved rounds (A B B A …).
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

export async function benchReplicated({ seconds = 4, rounds = 3, warmup = 1, connections = 64 } = {}) {
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
    const results = { solo: [], replicated: [] };
    const pairs = [];
    for (let r = 0; r < rounds; r++) {
      for (const who of r % 2 === 0 ? ['solo', 'replicated'] : ['replicated', 'solo']) {
        await resetRedis(clients[who]);
        await sleep(300);
        const res = await loadRound(tool, url(who), poolFile, pool, seconds, connections, nextNonce());
        const jobs = await clients[who].llen(`bench-${who}:verify:wait`);
        if (jobs < res.ok) throw new Error(`${who}: ${res.ok} deliveries answered 2xx but only ${jobs} jobs are in Redis`);
        results[who].push({ rate: res.ok / res.seconds, ...res });
        // Neighbouring rounds (A B | B A …) saw the same machine load: their ratio is the like-for-like figure.
        if (results.solo.length === results.replicated.length) pairs.push(results.replicated.at(-1).rate / results.solo.at(-1).rate);
        log(
          `receiver ${who.padEnd(10)} ${(res.ok / res.seconds).toFixed(0)}/s (2xx ${res.ok}, other ${res.bad}), p50 ${res.p50ms.toFixed(2)} ms p99 ${res.p99ms.toFixed(2)} ms`,
        );
      }
    }
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
    summary.ratio = median(pairs);
    summary.pairs = pairs;
    log(
      `receiver without replica ${summary.solo.rate.toFixed(0)}/s (p50 ${summary.solo.p50ms.toFixed(2)} ms, p99 ${summary.solo.p99ms.toFixed(2)} ms); ` +
        `with replica + WAIT 1 ${summary.replicated.rate.toFixed(0)}/s (p50 ${summary.replicated.p50ms.toFixed(2)} ms, p99 ${summary.replicated.p99ms.toFixed(2)} ms) → ${summary.ratio.toFixed(2)}× (median of paired rounds ${pairs.map((x) => x.toFixed(2)).join(', ')})`,
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
  await benchReplicated(quick ? { seconds: 2, rounds: 1, warmup: 1 } : {});
}
