/**
 * Where mirrors live and how operations on one are ordered: one bare repository per fetch URL under the cache
 * directory, created on first use, and a per-mirror queue (concurrent fetches into one bare repo fight over ref locks).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitRunner } from './git-exec.js';

export interface MirrorStore {
  path(fetchUrl: string): string;
  /** The mirror's directory, created (bare, no gc, no maintenance) when missing. */
  ensure(fetchUrl: string): Promise<string>;
  serial: <T>(fetchUrl: string, fn: () => Promise<T>) => Promise<T>;
}

export function createMirrorStore(cacheDir: string, run: GitRunner): MirrorStore {
  const queues = new Map<string, Promise<unknown>>();
  const path = (fetchUrl: string) => join(cacheDir, `${createHash('sha256').update(fetchUrl).digest('hex').slice(0, 24)}.git`);
  return {
    path,
    serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
      const prev = queues.get(key) ?? Promise.resolve();
      const next = prev.then(fn, fn);
      const tail = next.catch(() => undefined);
      queues.set(key, tail);
      void tail.then(() => {
        if (queues.get(key) === tail) queues.delete(key);
      });
      return next;
    },
    async ensure(fetchUrl) {
      const dir = path(fetchUrl);
      try {
        await stat(join(dir, 'HEAD'));
        return dir;
      } catch {
        // not there yet
      }
      await mkdir(cacheDir, { recursive: true });
      await rm(dir, { recursive: true, force: true });
      await run(['init', '--bare', '--quiet', dir]);
      await run(['config', 'remote.origin.url', fetchUrl], dir);
      // Mirrors only serve verification: no gc surprises mid-fetch, never prompt, keep fetched objects.
      await run(['config', 'gc.auto', '0'], dir);
      // No background `git maintenance` process after every fetch.
      await run(['config', 'maintenance.auto', 'false'], dir);
      return dir;
    },
  };
}
