/**
 * Reads of a remote branch (`+refs/heads/<b>:refs/gitops-gate/heads/<b>`), shared: a caller that needs the branch as
 * it was at or after time T joins a read that started at or after T (in flight or just finished) instead of starting
 * its own. A read that started before T is never reused for it, so every proof is at least as fresh as the caller
 * asked — the verifier asks for "after the webhook arrived", which is what a read of its own at job time gave.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classifyGitError, SHA, type GitRunner } from './git-exec.js';

interface Read {
  startedAt: number;
  head: Promise<string | null>;
}

export interface BranchReader {
  head(fetchUrl: string, dir: string, url: string, branch: string, freshSince?: number): Promise<string | null>;
}

export function createBranchReader(deps: {
  run: GitRunner;
  serial: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
  now?: () => number;
  maxRemembered?: number;
}): BranchReader {
  const now = deps.now ?? Date.now;
  const max = deps.maxRemembered ?? 10_000;
  const latest = new Map<string, Read>();

  async function readOnce(dir: string, url: string, branch: string): Promise<string | null> {
    const local = `refs/gitops-gate/heads/${branch}`;
    try {
      await deps.run(
        ['-c', 'protocol.version=2', 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', 'origin', `+refs/heads/${branch}:${local}`],
        dir,
      );
    } catch (err) {
      const e = classifyGitError(err, url, `refs/heads/${branch}`);
      if (e.code !== 'GIT_COMMIT_NOT_FOUND') throw e;
      // Branch gone: forget what this mirror last saw of it.
      await deps.run(['update-ref', '-d', local], dir).catch(() => undefined);
      return null;
    }
    // The fetch just wrote the loose ref (gc and pack-refs are off in mirrors): read it without another process.
    const text = await readFile(join(dir, local), 'utf8').catch(() => undefined);
    const direct = text?.trim();
    if (direct && SHA.test(direct)) return direct;
    const out = String((await deps.run(['rev-parse', '--verify', '--quiet', `${local}^{commit}`], dir)).stdout).trim();
    return SHA.test(out) ? out : null;
  }

  return {
    head(fetchUrl, dir, url, branch, freshSince) {
      const key = `${fetchUrl}\0${branch}`;
      const since = Math.min(freshSince ?? Infinity, now());
      const last = latest.get(key);
      if (last && last.startedAt >= since) return last.head;
      // Queued behind the mirror's other work; its start time is when it actually reads the remote.
      const read: Read = { startedAt: Infinity, head: Promise.resolve(null) };
      read.head = deps.serial(fetchUrl, () => {
        read.startedAt = now();
        return readOnce(dir, url, branch);
      });
      latest.delete(key);
      latest.set(key, read);
      if (latest.size > max) latest.delete(latest.keys().next().value as string);
      // A failed read is not remembered: the next caller tries again.
      read.head.catch(() => {
        if (latest.get(key) === read) latest.delete(key);
      });
      return read.head;
    },
  };
}
