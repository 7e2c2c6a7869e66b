// Row 1: signed, durably queued deliveries/s — our receiver (services/receiver/dist/main.js: HMAC, validation, dedupe
// key, metrics, queue-depth valve, BullMQ add) against the bare anchor (bench/anchor.js), same Redis (AOF everysec),
// same load generator, interleaved rounds (A B B A A B …) so that other load on the machine hits both alike.
import { randomBytes } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, startTestRedis } from '@gitops-gate/testing';
import { nonceSource, writeSignedPushPool } from './lib/pipeline.js';
import { countRedisCommands, cpuSeconds, log, median, redisDelta, redisStats, REPO_ROOT, resetRedis, startNode } from './lib/util.js';

const run = promisify(execFile);

export function hasWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version
    return err.status === 1;
  }
}

/** One load round against url; returns { ok, total, seconds, p50ms, p99ms }. */
export async function loadRound(tool, url, poolFile, pool, seconds, connections, nonce) {
  if (tool === 'wrk') {
    const { stdout } = await run(
      'wrk',
      [
        '-t1',
        `-c${connections}`,
        `-d${seconds}s`,
        '--timeout',
        '5s',
        '-s',
        join(REPO_ROOT, 'bench/lib/deliveries.lua'),
        url,
        '--',
        poolFile,
        nonce,
      ],
      {
        timeout: (seconds + 30) * 1000,
      },
    );
    const j = JSON.parse(/WRK_JSON (.*)/.exec(stdout)[1]);
    const errors = j.connect + j.read + j.write + j.timeout;
    return {
      ok: j.requests - j.non2xx,
      total: j.requests,
      bad: j.non2xx + errors,
      seconds: j.duration_us / 1e6,
      p50ms: j.p50_us / 1000,
      p99ms: j.p99_us / 1000,
    };
  }
  // autocannon fallback (uses a core of its own in JS: absolute numbers are lower, the ratio is still like for like)
  const { default: autocannon } = await import('autocannon');
  let i = 0;
  const res = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/webhooks/github',
        setupRequest: (req) => {
          const k = i % pool.length;
          i += 1;
          return {
            ...req,
            headers: {
              'content-type': 'application/json',
              'x-github-event': 'push',
              'x-github-delivery': `${nonce}-${i}`,
              'x-hub-signature-256': pool[k].sig,
            },
            body: pool[k].body,
          };
        },
      },
    ],
  });
  const ok = res['2xx'];
  return {
    ok,
    total: res.requests.total,
    bad: res.non2xx + res.errors + res.timeouts,
    seconds: res.duration,
    p50ms: res.latency.p50,
    p99ms: res.latency.p99,
  };
}

export async function benchReceiver({ seconds = 5, rounds = 3, warmup = 2, connections = 64 } = {}) {
  const tool = process.env.BENCH_LOADGEN === 'autocannon' || !hasWrk() ? 'autocannon' : 'wrk';
  if (tool !== 'wrk')
    log('load generator: autocannon (wrk not found or BENCH_LOADGEN=autocannon); it competes for the cores — apt-get install -y wrk');
  const dir = mkdtempSync(join(tmpdir(), 'gg-bench-recv-'));
  const redis = await startTestRedis({ appendfsync: 'everysec' });
  const client = new Redis(redis.url);
  const secret = randomBytes(24).toString('hex');
  const { pool, poolFile } = writeSignedPushPool(dir, secret);
  const ports = { ours: await freePort(), anchor: await freePort() };
  const prefix = { ours: 'bench-ours', anchor: 'bench-anchor' };
  const procs = {};
  try {
    procs.ours = await startNode(
      join(REPO_ROOT, 'services/receiver/dist/main.js'),
      {
        LOG_LEVEL: 'warn',
        REDIS_URL: redis.url,
        QUEUE_PREFIX: prefix.ours,
        WEBHOOK_SECRETS: secret,
        RECEIVER_HOST: '127.0.0.1',
        RECEIVER_PORT: String(ports.ours),
        // The valve would answer 503 once 10 000 jobs wait (nobody consumes here); the benchmark measures intake.
        MAX_QUEUE_DEPTH: '100000000',
      },
      `http://127.0.0.1:${ports.ours}/healthz`,
      { name: 'receiver' },
    );
    procs.anchor = await startNode(
      join(REPO_ROOT, 'bench/anchor.js'),
      { REDIS_URL: redis.url, PORT: String(ports.anchor), SECRET: secret, PREFIX: prefix.anchor },
      `http://127.0.0.1:${ports.anchor}/healthz`,
      { name: 'anchor' },
    );
    const url = (who) => `http://127.0.0.1:${ports[who]}`;
    const nextNonce = nonceSource();
    for (const who of ['anchor', 'ours']) await loadRound(tool, url(who), poolFile, pool, warmup, connections, nextNonce());

    const results = { ours: [], anchor: [] };
    const order = [];
    for (let r = 0; r < rounds; r++) order.push(...(r % 2 === 0 ? ['anchor', 'ours'] : ['ours', 'anchor']));
    const pairs = [];
    for (const [k, who] of order.entries()) {
      await resetRedis(client);
      await sleep(300);
      const pid = procs[who].child.pid;
      const cpu0 = cpuSeconds(pid);
      const r0 = await redisStats(client);
      const res = await loadRound(tool, url(who), poolFile, pool, seconds, connections, nextNonce());
      const cpu1 = cpuSeconds(pid);
      const r1 = await redisStats(client);
      // Durability check: every 2xx must be a job in Redis (the server may have queued a few more that wrk did not
      // wait for at the end of the round).
      const jobs = await client.llen(`${prefix[who]}:verify:wait`);
      if (jobs < res.ok) throw new Error(`${who}: ${res.ok} deliveries answered 2xx but only ${jobs} jobs are in Redis`);
      const rate = res.ok / res.seconds;
      results[who].push({ rate, ...res, cpuPerDelivery: (cpu1 - cpu0) / res.ok, redis: redisDelta(r0, r1, res.ok) });
      // Each round pairs with its neighbour (A B | B A | A B …): the ratio of a pair saw the same machine load.
      if (k % 2 === 1) pairs.push(results.ours.at(-1).rate / results.anchor.at(-1).rate);
      log(
        `receiver ${who.padEnd(6)} ${rate.toFixed(0)}/s (2xx ${res.ok}, other ${res.bad}), p50 ${res.p50ms.toFixed(2)} ms p99 ${res.p99ms.toFixed(2)} ms, cpu ${(((cpu1 - cpu0) / res.ok) * 1e6).toFixed(0)} µs/delivery`,
      );
    }
    // Redis traffic of one delivery, from MONITOR over a short sequential run (not timed).
    const perDelivery = {};
    for (const who of ['ours', 'anchor']) {
      perDelivery[who] = await countRedisCommands(redis.url, async () => {
        const n = 200;
        for (let i = 0; i < n; i++) {
          const p = pool[i];
          const res = await fetch(`${url(who)}/webhooks/github`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'x-github-event': 'push',
              'x-github-delivery': `count-${who}-${i}`,
              'x-hub-signature-256': p.sig,
            },
            body: p.body,
          });
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`${who} answered ${res.status}`);
        }
        return n;
      });
    }
    const ours = median(results.ours.map((r) => r.rate));
    const anchor = median(results.anchor.map((r) => r.rate));
    const pick = (who, f) => median(results[who].map(f));
    return {
      tool,
      connections,
      seconds,
      rounds,
      ours,
      anchor,
      ratio: median(pairs),
      pairRatios: pairs,
      errors: { ours: results.ours.reduce((s, r) => s + r.bad, 0), anchor: results.anchor.reduce((s, r) => s + r.bad, 0) },
      p99ms: { ours: pick('ours', (r) => r.p99ms), anchor: pick('anchor', (r) => r.p99ms) },
      cpuPerDeliveryUs: { ours: pick('ours', (r) => r.cpuPerDelivery) * 1e6, anchor: pick('anchor', (r) => r.cpuPerDelivery) * 1e6 },
      redisCpuPerDeliveryUs: { ours: pick('ours', (r) => r.redis.cpu) * 1e6, anchor: pick('anchor', (r) => r.redis.cpu) * 1e6 },
      redisPerDelivery: perDelivery,
      all: results,
    };
  } finally {
    for (const p of Object.values(procs)) await p.stop();
    client.disconnect();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchReceiver({ seconds: Number(process.argv[2] ?? 5), rounds: Number(process.argv[3] ?? 3) });
  delete r.all;
  console.log(JSON.stringify(r, null, 2));
}
