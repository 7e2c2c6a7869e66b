// Row 3: 2 verifier processes vs 1 — time to drain N verify jobs for N distinct SSH-signed commits, queued straight on
// the verify queue (no receiver, no gate: verdicts pile up on the gate queue). Each verifier is the built process
// (services/verifier/dist/main.js, default VERIFIER_CONCURRENCY) with its own git mirror; the mirrors already hold the
// commits (a warm-up job creates each mirror, then the objects are written into it), so the load is verification
// work — reading the commit, checking the signature, the verdict cache lookup, queue traffic — and not fetching.
// Rounds alternate (1 2 2 1 …) so that other load on the machine hits both alike.
import { randomUUID } from 'node:crypto';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { normalizeRepoUrl, verifyJobId } from '@gitops-gate/contracts';
import { createRedisConnection, createVerifyQueue, publishFollowedRepos, verifyJobOptions } from '@gitops-gate/queue';
import { freePort, startTestRedis } from '@gitops-gate/testing';
import { countTracedGit, createBareRemote, createSshKey, makeCommit, startGitTrace, stopGitTrace } from './lib/commits.js';
import { metricValue } from './lib/pipeline.js';
import { cpuSplit, log, median, REPO_ROOT, resetRedis, startNode } from './lib/util.js';

const REPO_URL = 'https://github.com/bench/scale.git';

function job(sha) {
  return {
    v: 1,
    kind: 'commit',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/bench/scale',
    cloneUrl: REPO_URL,
    repoFullName: 'bench/scale',
    branch: 'main',
    sha,
    forced: false,
    receivedAt: new Date().toISOString(),
  };
}

/**
 * What one mirror read costs: `git cat-file commit` spawned per read (what @gitops-gate/git does) vs a request to one
 * long-lived `git cat-file --batch`. Both sequential, ms wall and ms of this process's CPU per read.
 */
export async function benchGitRead(gitDir, sha, n = 50) {
  const time = async (fn) => {
    await fn();
    const u = process.cpuUsage();
    const t = performance.now();
    for (let i = 0; i < n; i++) await fn();
    const c = process.cpuUsage(u);
    return { wallMs: (performance.now() - t) / n, cpuMs: (c.user + c.system) / 1000 / n };
  };
  const spawned = await time(
    () =>
      new Promise((res, rej) =>
        execFile('git', ['cat-file', 'commit', sha], { cwd: gitDir, encoding: 'buffer' }, (e, out) => (e ? rej(e) : res(out))),
      ),
  );
  const child = spawn('git', ['cat-file', '--batch'], { cwd: gitDir, stdio: ['pipe', 'pipe', 'ignore'] });
  let buf = Buffer.alloc(0);
  let waiter;
  child.stdout.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    const nl = buf.indexOf(10);
    if (nl < 0) return;
    const size = Number(buf.subarray(0, nl).toString().split(' ')[2]);
    if (buf.length < nl + size + 2) return;
    const body = buf.subarray(nl + 1, nl + 1 + size);
    buf = buf.subarray(nl + size + 2);
    waiter(body);
  });
  const batch = await time(
    () =>
      new Promise((r) => {
        waiter = r;
        child.stdin.write(`${sha}\n`);
      }),
  );
  child.kill();
  log(
    `git read: spawn per read ${spawned.wallMs.toFixed(2)} ms wall / ${spawned.cpuMs.toFixed(2)} ms node CPU; persistent cat-file --batch ${batch.wallMs.toFixed(2)} ms / ${batch.cpuMs.toFixed(2)} ms`,
  );
  return { spawned, batch };
}

/**
 * Row "duplicate verifications coalesced": 50 jobs for one commit (same policy, same trust root) queued at once on the
 * running verifier processes; how many signature verifications ran in all of them (target 1), the rest answered from
 * it (in flight: coalesced; after it: the verdict cache).
 */
async function coalesceRound(procs, queue, client, gateWait, sha, remote) {
  for (const p of procs) {
    const mirror = readdirSync(p.cacheDir).find((d) => d.endsWith('.git'));
    execFileSync('cp', ['-rn', `${join(remote, 'objects')}/.`, join(p.cacheDir, mirror, 'objects')]);
  }
  const count = async (result) =>
    (await Promise.all(procs.map((p) => metricValue(p.port, 'gitops_gate_commit_verifications', `result="${result}"`)))).reduce(
      (a, b) => a + b,
      0,
    );
  const before = { verified: await count('verified'), coalesced: await count('coalesced') };
  const base = await client.llen(gateWait);
  await queue.addBulk(
    Array.from({ length: 50 }, () => ({
      name: 'commit',
      data: job(sha),
      opts: { ...verifyJobOptions(3600), jobId: verifyJobId(randomUUID()) },
    })),
  );
  const deadline = Date.now() + 60_000;
  while ((await client.llen(gateWait)) < base + 50) {
    if (Date.now() > deadline) throw new Error('coalesce: 50 jobs not drained in 60 s');
    await sleep(20);
  }
  const verified = (await count('verified')) - before.verified;
  const coalesced = (await count('coalesced')) - before.coalesced;
  log(
    `coalesce: 50 jobs for one commit on ${procs.length} verifiers: ${verified} verification(s), ${coalesced} coalesced in flight, ${50 - verified - coalesced} from the verdict cache`,
  );
  return { jobs: 50, processes: procs.length, verified, coalesced, cached: 50 - verified - coalesced };
}

export async function benchScale({ jobs = 600, rounds = 2, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gg-bench-scale-'));
  const remote = createBareRemote(dir);
  const key = createSshKey();
  const allowed = join(dir, 'allowed_signers');
  writeFileSync(allowed, `${key.allowedSignersLine('dev@example.com')}\n`);
  const root = makeCommit(remote, { message: 'root', key });
  // The branch the jobs name exists (its head is the root), so every job proves it against the remote's ref.
  execFileSync('git', ['update-ref', 'refs/heads/main', root.sha], { cwd: remote });
  const redis = await startTestRedis({ appendfsync: 'everysec' });
  const client = new Redis(redis.url);
  const conn = createRedisConnection(redis.url, 'worker');
  const results = { 1: [], 2: [] };
  const gitHome = join(dir, 'home');
  const traceDir = join(dir, 'trace2');
  mkdirSync(gitHome);
  mkdirSync(traceDir);
  let coalesce;
  let t = Math.floor(Date.now() / 1000) - 7200;
  try {
    const order = [];
    for (let r = 0; r < rounds; r++) order.push(...(r % 2 === 0 ? [1, 2] : [2, 1]));
    const pairs = [];
    for (const [k, n] of order.entries()) {
      await resetRedis(client);
      const prefix = `scale-${randomUUID().slice(0, 8)}`;
      // What the gate publishes: the verifier fetches only followed repositories (without it, jobs wait for the set).
      await publishFollowedRepos(conn, prefix, [{ repoUrl: normalizeRepoUrl(REPO_URL), fetchUrl: REPO_URL, branches: ['main'] }]);
      const cacheRoot = join(dir, `cache-${prefix}`);
      // Distinct commits for this round (children of one root), so no verdict is ever cached.
      const shas = [];
      for (let i = 0; i < jobs; i++) shas.push(makeCommit(remote, { parents: [root.sha], message: `scale ${n} ${i}`, key, time: ++t }).sha);
      const queue = createVerifyQueue(conn, prefix);
      const procs = [];
      try {
        for (let i = 0; i < n; i++) {
          const port = await freePort();
          const cacheDir = join(cacheRoot, `v${i}`);
          mkdirSync(cacheDir, { recursive: true });
          procs.push({
            cacheDir,
            port,
            ...(await startNode(
              join(REPO_ROOT, 'services/verifier/dist/main.js'),
              {
                LOG_LEVEL: 'warn',
                REDIS_URL: redis.url,
                QUEUE_PREFIX: prefix,
                ALLOWED_SIGNERS_FILE: allowed,
                GIT_CACHE_DIR: cacheDir,
                GIT_URL_REWRITES: JSON.stringify({ [REPO_URL]: `file://${remote}` }),
                VERIFIER_HTTP_PORT: String(port),
                HOME: gitHome,
                ...env,
              },
              `http://127.0.0.1:${port}/healthz`,
              { name: 'verifier' },
            )),
          });
        }
        // Warm-up: one job per verifier creates its mirror (and warms its code paths)…
        const gateWait = `${prefix}:gate:wait`;
        const warm = [];
        for (let i = 0; i < n * 4; i++)
          warm.push(makeCommit(remote, { parents: [root.sha], message: `warm ${n} ${i}`, key, time: ++t }).sha);
        await queue.addBulk(
          warm.map((sha) => ({ name: 'commit', data: job(sha), opts: { ...verifyJobOptions(3600), jobId: verifyJobId(randomUUID()) } })),
        );
        while ((await client.llen(gateWait)) < warm.length) await sleep(20);
        // …then every mirror gets this round's commits, so no job needs a fetch.
        for (const p of procs) {
          const mirror = readdirSync(p.cacheDir).find((d) => d.endsWith('.git'));
          if (!mirror) throw new Error('verifier created no mirror during warm-up');
          execFileSync('cp', ['-rn', `${join(remote, 'objects')}/.`, join(p.cacheDir, mirror, 'objects')]);
        }
        await sleep(200);
        const cpu0 = procs.map((p) => cpuSplit(p.child.pid));
        // Counting the git processes the measured jobs start: a trace2 target in the verifiers' $HOME for this window.
        startGitTrace(gitHome, traceDir);
        const t0 = performance.now();
        const base = await client.llen(gateWait);
        await queue.addBulk(
          shas.map((sha) => ({ name: 'commit', data: job(sha), opts: { ...verifyJobOptions(3600), jobId: verifyJobId(randomUUID()) } })),
        );
        const deadline = Date.now() + 120_000;
        while ((await client.llen(gateWait)) < base + jobs) {
          if (Date.now() > deadline) throw new Error(`scale: ${n} verifier(s) did not drain ${jobs} jobs in 120 s`);
          await sleep(20);
        }
        const secs = (performance.now() - t0) / 1000;
        const cpu1 = procs.map((p) => cpuSplit(p.child.pid));
        stopGitTrace(gitHome);
        const gitProcs = countTracedGit(traceDir);
        const self = cpu1.reduce((s, c, i) => s + c.self - cpu0[i].self, 0);
        const git = cpu1.reduce((s, c, i) => s + c.children - cpu0[i].children, 0);
        results[n].push({
          secs,
          rate: jobs / secs,
          cpuMsPerJob: ((self + git) / jobs) * 1e3,
          nodeMsPerJob: (self / jobs) * 1e3,
          gitMsPerJob: (git / jobs) * 1e3,
          gitProcsPerJob: gitProcs.total / jobs,
          gitProcs: gitProcs.bySub,
        });
        if (n === 2 && !coalesce)
          coalesce = await coalesceRound(
            procs,
            queue,
            client,
            gateWait,
            makeCommit(remote, { parents: [root.sha], message: `same ${prefix}`, key, time: ++t }).sha,
            remote,
          );
        if (k % 2 === 1) pairs.push(results[2].at(-1).rate / results[1].at(-1).rate);
        log(
          `scale ${n} verifier(s): ${jobs} jobs in ${secs.toFixed(2)} s = ${(jobs / secs).toFixed(0)} jobs/s; CPU/job ${((self / jobs) * 1e3).toFixed(1)} ms node + ${((git / jobs) * 1e3).toFixed(1)} ms git children`,
        );
      } finally {
        for (const p of procs) await p.stop();
        await queue.close();
        rmSync(cacheRoot, { recursive: true, force: true });
      }
    }
    const gitRead = await benchGitRead(remote, root.sha);
    const one = median(results[1].map((r) => r.rate));
    const two = median(results[2].map((r) => r.rate));
    const all = [...results[1], ...results[2]];
    return {
      jobs,
      rounds,
      one,
      two,
      ratio: median(pairs),
      coalesce,
      gitProcsPerJob: median(all.map((r) => r.gitProcsPerJob)),
      gitProcs: all.at(-1)?.gitProcs,
      pairRatios: pairs,
      cpuMsPerJob: median([...results[1], ...results[2]].map((r) => r.cpuMsPerJob)),
      nodeMsPerJob: median([...results[1], ...results[2]].map((r) => r.nodeMsPerJob)),
      gitMsPerJob: median([...results[1], ...results[2]].map((r) => r.gitMsPerJob)),
      gitRead,
      all: results,
    };
  } finally {
    conn.disconnect();
    client.disconnect();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchScale({ jobs: Number(process.argv[2] ?? 600), rounds: Number(process.argv[3] ?? 2) });
  console.log(JSON.stringify(r, null, 2));
}
