import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '@gitops-gate/testing';

export class StackError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure `redis-server` is installed: as root it installs Debian's package (what a fresh machine lacks);
 * otherwise it says exactly what to install.
 */
export function ensureRedisServer(log: (line: string) => void): void {
  if (hasCommand('redis-server')) return;
  if (process.getuid?.() !== 0) {
    throw new StackError('REDIS_MISSING', 'redis-server is not installed: run `sudo apt-get install -y redis-server` (or set REDIS_URL to an existing Redis)');
  }
  log('redis-server is missing: installing Debian package redis-server (apt-get)…');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

export interface LocalRedis {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A local redis-server configured as production wants it: AOF on (fsync every second) and noeviction. */
export async function startLocalRedis(dataDir: string, port?: number): Promise<LocalRedis> {
  mkdirSync(dataDir, { recursive: true });
  const p = port ?? (await freePort());
  const proc = spawn(
    'redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${p}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    try {
      await probe.connect();
      up = (await probe.ping()) === 'PONG';
    } catch {
      await sleep(25);
    } finally {
      probe.disconnect();
    }
  }
  if (!up) {
    proc.kill('SIGKILL');
    throw new StackError('REDIS_START_FAILED', `redis-server did not answer on ${url}`);
  }
  return {
    url,
    process: proc,
    async stop() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    },
  };
}
