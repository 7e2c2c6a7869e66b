/**
 * Real Redis topologies on loopback for the tests: a generic node (any redis-server/redis-sentinel arguments, e.g.
 * TLS or requirepass), master + replicas + three sentinels, and a 3-master Redis Cluster. Every process is spawned
 * here and killed by its handle (never by name).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from './redis.js';

const run = promisify(execFile);

export interface RedisNode {
  port: number;
  dir: string;
  /** Kills the process (SIGKILL when `hard`, like a crash). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again with the same arguments, port and dir. */
  start(): Promise<void>;
  readonly running: boolean;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** One redis-server (or `redis-sentinel` when `sentinel`) with `args`; ready once its port accepts connections. */
export async function startRedisNode(
  opts: { args?: (port: number, dir: string) => string[]; sentinel?: boolean; port?: number; dir?: string } = {},
): Promise<RedisNode> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'gg-rnode-'));
  let proc: ChildProcess | undefined;
  const node: RedisNode = {
    port,
    dir,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    async start() {
      const extra = opts.args?.(port, dir) ?? [];
      if (opts.sentinel) {
        // Sentinel rewrites its config file, so it needs one of its own.
        const conf = join(dir, 'sentinel.conf');
        writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\n${extra.join('\n')}\n`);
        proc = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
      } else {
        proc = spawn(
          'redis-server',
          ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', ...extra],
          { stdio: 'ignore' },
        );
      }
      for (let i = 0; i < 400; i++) {
        if (await portOpen(port)) return;
        await sleep(25);
      }
      proc.kill('SIGKILL');
      throw new Error(`${opts.sentinel ? 'redis-sentinel' : 'redis-server'} did not start on port ${port}`);
    },
    async stop(hard = false) {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill(hard ? 'SIGKILL' : 'SIGTERM');
      await exited;
    },
  };
  await node.start();
  return node;
}

export interface SentinelTopology {
  masterName: string;
  master: RedisNode;
  replicas: RedisNode[];
  sentinels: RedisNode[];
  /** `host:port` list for REDIS_SENTINELS. */
  sentinelList: string;
  /** Port of the current master according to the first sentinel that answers. */
  currentMasterPort(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A master, `replicas` replicas and three sentinels (quorum 2) with short failover timings: down-after 1 s, so a
 * killed master is replaced in about 2–3 s.
 */
export async function startSentinelTopology(opts: { replicas?: number; downAfterMs?: number } = {}): Promise<SentinelTopology> {
  const masterName = 'ggmaster';
  const base = (port: number, dir: string) => [
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    '--dir',
    dir,
    '--port',
    String(port),
  ];
  const master = await startRedisNode({ args: base });
  const replicas: RedisNode[] = [];
  for (let i = 0; i < (opts.replicas ?? 1); i++) {
    replicas.push(await startRedisNode({ args: (p, d) => [...base(p, d), '--replicaof', '127.0.0.1', String(master.port)] }));
  }
  const downAfter = opts.downAfterMs ?? 1_000;
  const sentinels: RedisNode[] = [];
  for (let i = 0; i < 3; i++) {
    sentinels.push(
      await startRedisNode({
        sentinel: true,
        args: () => [
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${downAfter}`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
        ],
      }),
    );
  }
  const all = [master, ...replicas, ...sentinels];
  const topology: SentinelTopology = {
    masterName,
    master,
    replicas,
    sentinels,
    sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    async currentMasterPort() {
      for (const s of sentinels) {
        if (!s.running) continue;
        try {
          const { stdout } = await run('redis-cli', ['-p', String(s.port), 'sentinel', 'get-master-addr-by-name', masterName]);
          const port = Number(stdout.trim().split('\n')[1]);
          if (port > 0) return port;
        } catch {
          // next sentinel
        }
      }
      throw new Error('no sentinel knows the master');
    },
    async close() {
      for (const n of all) await n.stop(true);
      for (const n of all) rmSync(n.dir, { recursive: true, force: true });
    },
  };
  // Sentinels learn about the replicas from the master within a second or two (INFO every 10 s at first; the
  // hello channel is faster); wait until they agree on it, so a kill right after start is a real failover.
  for (let i = 0; i < 200; i++) {
    const { stdout } = await run('redis-cli', ['-p', String(sentinels[0]!.port), 'sentinel', 'replicas', masterName]).catch(() => ({
      stdout: '',
    }));
    const { stdout: peers } = await run('redis-cli', ['-p', String(sentinels[0]!.port), 'sentinel', 'sentinels', masterName]).catch(() => ({
      stdout: '',
    }));
    const known = stdout.split('\n').filter((l) => l.trim() === 'name').length;
    const others = peers.split('\n').filter((l) => l.trim() === 'name').length;
    if (known >= replicas.length && others >= 2) return topology;
    await sleep(100);
  }
  await topology.close();
  throw new Error('sentinels did not discover the replicas and each other');
}

export interface RedisClusterProcesses {
  /** Seed node URL for REDIS_URL with REDIS_CLUSTER=true. */
  url: string;
  nodes: RedisNode[];
  close(): Promise<void>;
}

/** A Redis Cluster of `masters` masters (no replicas), slots split by `redis-cli --cluster create`. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcesses> {
  const root = mkdtempSync(join(tmpdir(), 'gg-rcluster-'));
  const nodes: RedisNode[] = [];
  for (let i = 0; i < masters; i++) {
    const dir = join(root, String(i));
    mkdirSync(dir);
    nodes.push(
      await startRedisNode({
        dir,
        args: () => [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          '--cluster-node-timeout',
          '2000',
          '--appendonly',
          'no',
          '--maxmemory-policy',
          'noeviction',
        ],
      }),
    );
  }
  const close = async () => {
    for (const n of nodes) await n.stop(true);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (let i = 0; i < 200; i++) {
      const states = await Promise.all(
        nodes.map((n) =>
          run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])
            .then((r) => r.stdout)
            .catch(() => ''),
        ),
      );
      if (states.every((s) => s.includes('cluster_state:ok'))) return { url: `redis://127.0.0.1:${nodes[0]!.port}`, nodes, close };
      await sleep(100);
    }
    throw new Error('cluster did not reach cluster_state:ok');
  } catch (err) {
    await close();
    throw err;
  }
}
