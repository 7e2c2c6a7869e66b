import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGKILL when `hard`, like a crash; SIGTERM otherwise). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and data dir (AOF is replayed). */
  start(): Promise<void>;
  /** Stops and removes the data dir. */
  close(): Promise<void>;
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGKILL when `hard`, like a crash; SIGTERM otherwise). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and data dir (AOF is replayed). */
  start(): Promise<void>;
}

/**
 * A real redis-server on loopback configured as production wants it: AOF on and `noeviction`. Used by the tests
 * (`startTestRedis`) and by `npm start`.
 */
export async function startRedisServer(opts: {
  dir: string;
  port?: number;
  appendfsync?: 'always' | 'everysec' | 'no';
}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir;
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        opts.appendfsync ?? 'everysec',
        '--maxmemory-policy',
        'noeviction',
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    for (let i = 0; i < 200; i++) {
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        await sleep(25);
      }
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server did not start on port ${port} (is the redis-server package installed?)`);
  };
  const stop = async (hard = false): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, dir, stop, start };
}

export interface TestRedis extends RedisServer {
  /** Stops and removes the data dir. */
  close(): Promise<void>;
}

/** A redis-server of its own for one test file, in a temporary dir: tests can kill and restart it. */
export async function startTestRedis(opts: { appendfsync?: 'always' | 'everysec' | 'no' } = {}): Promise<TestRedis> {
  const server = await startRedisServer({ dir: mkdtempSync(join(tmpdir(), 'gg-redis-')), appendfsync: opts.appendfsync });
  return {
    ...server,
    async close() {
      await server.stop(true);
      rmSync(server.dir, { recursive: true, force: true });
    },
  };
}
