import { BaseError } from '@gitops-gate/contracts/errors';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { startRedisServer, type RedisServer } from '@gitops-gate/testing';

export const STACK_ERROR_CODES = [
  'REDIS_MISSING',
  'REDIS_START_FAILED',
  'SERVICE_EXITED',
  'SERVICE_TIMEOUT',
  'DEMO_NO_DECISION',
  'ARGO_WRITER_INVALID',
  'ARGO_WRITER_HTTP',
] as const;
export type StackErrorCode = (typeof STACK_ERROR_CODES)[number];
export class StackError extends BaseError<StackErrorCode> {}

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
    throw new StackError(
      'REDIS_MISSING',
      'redis-server is not installed: run `sudo apt-get install -y redis-server` (or set REDIS_URL to an existing Redis)',
    );
  }
  log('redis-server is missing: installing Debian package redis-server (apt-get)…');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/**
 * `npm start`'s Redis: a local redis-server in the work dir, AOF on (fsync every second) and noeviction. `fresh`
 * deletes the data of earlier runs first (their decisions and retrying jobs would otherwise carry over silently).
 */
export async function startLocalRedis(dataDir: string, fresh = false): Promise<RedisServer> {
  if (fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  try {
    return await startRedisServer({ dir: dataDir });
  } catch (err) {
    throw new StackError('REDIS_START_FAILED', (err as Error).message);
  }
}

/** What the banner says about Redis state: fresh by default, kept with --keep-state, never wiped in a given REDIS_URL. */
export function redisStateBanner(external: boolean, keep: boolean): string {
  if (external) return 'kept (REDIS_URL is yours: never wiped)';
  return keep ? 'kept from earlier runs (--keep-state)' : "fresh: earlier runs' Redis data deleted (--keep-state keeps it)";
}
