// Small helpers shared by the benchmarks: child processes, CPU accounting from /proc, Redis statistics.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild as stopGracefully } from '@gitops-gate/local-stack';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

/** Starts `node file` with env, waits for GET healthUrl to answer 200; kills it if that never happens. */
export async function startNode(file, env, healthUrl, { name = file, onLine } = {}) {
  const child = spawn(process.execPath, [file], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d) => {
    out = (out + d).slice(-4000);
    onLine?.(String(d));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${out}`);
    try {
      if ((await fetch(healthUrl)).ok) return { child, output: () => out, stop: () => stopChild(child) };
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not become healthy: ${out}`);
}

/** SIGTERM, then SIGKILL after 5 s (the local stack's stop, with the benchmarks' shorter grace). */
export const stopChild = (child) => stopGracefully(child, 5_000);

const TICK = 100; // USER_HZ on Linux

/** CPU seconds used by a process so far, including its waited-for children (git, ssh-keygen…). */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the name: state(0) … utime(11) stime(12) cutime(13) cstime(14)
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
  } catch {
    return NaN;
  }
}

/** { self, children } CPU seconds of a process: its own, and that of its waited-for children (git…). */
export function cpuSplit(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { self: (Number(f[11]) + Number(f[12])) / TICK, children: (Number(f[13]) + Number(f[14])) / TICK };
  } catch {
    return { self: NaN, children: NaN };
  }
}

/** Redis `INFO commandstats` as { cmd: calls } plus the server's own CPU seconds. */
export async function redisStats(client) {
  const text = await client.info('commandstats');
  const calls = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  const cpu = await client.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(cpu)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(cpu)?.[1] ?? 0);
  return { calls, cpu: user + sys };
}

/** Per-unit difference of two redisStats snapshots: { cpu, total, calls: {cmd: n} } divided by `per`. */
export function redisDelta(
  a,
  b,
  per,
  ignore = ['info', 'config', 'flushall', 'bgrewriteaof', 'ping', 'llen', 'zcard', 'select', 'client', 'scan'],
) {
  const calls = {};
  let total = 0;
  for (const [cmd, n] of Object.entries(b.calls)) {
    const d = n - (a.calls[cmd] ?? 0);
    if (d > 0 && !ignore.includes(cmd)) {
      calls[cmd] = d / per;
      total += d / per;
    }
  }
  return { cpu: (b.cpu - a.cpu) / per, total, calls };
}

/** FLUSHALL and an AOF rewrite, waited for, so every round starts with the same Redis (empty data, small AOF). */
export async function resetRedis(client) {
  await client.flushall();
  await client.bgrewriteaof().catch(() => undefined);
  for (let i = 0; i < 200; i++) {
    const p = await client.info('persistence');
    if (/aof_rewrite_in_progress:0/.test(p) && /aof_rewrite_scheduled:0/.test(p)) break;
    await sleep(50);
  }
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export const median = (xs) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

export function fmt(n, digits = 0) {
  if (n === undefined || n === null || Number.isNaN(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function log(...args) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${args.join(' ')}\n`);
}

/**
 * Counts the commands Redis executes while `fn` runs, split into round trips (commands clients sent, one EVALSHA being
 * one) and commands run inside Lua scripts, per `per` units of work. Uses MONITOR, so only for short counting runs.
 */
export async function countRedisCommands(url, fn, { perFn, ignore = [] } = {}) {
  const { Redis } = await import('ioredis');
  const skip = new Set(ignore.map((c) => `${c.stream?.localAddress}:${c.stream?.localPort}`));
  const client = new Redis(url);
  const monitor = await client.monitor();
  const sent = {};
  const lua = {};
  let sentTotal = 0;
  let luaTotal = 0;
  monitor.on('monitor', (_time, args, source) => {
    const cmd = String(args[0]).toLowerCase();
    if (cmd === 'monitor' || skip.has(source)) return;
    if (source === 'lua') {
      lua[cmd] = (lua[cmd] ?? 0) + 1;
      luaTotal++;
    } else {
      sent[cmd] = (sent[cmd] ?? 0) + 1;
      sentTotal++;
    }
  });
  let per;
  try {
    per = await fn();
  } finally {
    await sleep(100);
    monitor.disconnect();
    client.disconnect();
  }
  per = perFn ? perFn(per) : per;
  const scale = (o) =>
    Object.fromEntries(
      Object.entries(o)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, v / per]),
    );
  return { per, roundTrips: sentTotal / per, inScripts: luaTotal / per, sent: scale(sent), lua: scale(lua) };
}
