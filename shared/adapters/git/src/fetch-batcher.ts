/**
 * One `git fetch` per mirror for every SHA waiting on it: requests that arrive while a fetch (or any other operation
 * on the mirror) runs are collected and fetched together by the next one, so a burst of pushes to one repository
 * costs one fetch, not one per push.
 */
import { classifyGitError, GitError, type GitRunner } from './git-exec.js';

interface Waiter {
  resolve: () => void;
  reject: (e: GitError) => void;
}

export interface FetchBatcher {
  /** Resolves once `sha` is in the mirror at `dir`; rejects with a GitError when the remote does not have it. */
  fetch(fetchUrl: string, dir: string, url: string, sha: string): Promise<void>;
  /** Fetches started (for tests and metrics). */
  fetches(): number;
}

export interface FetchBatcherDeps {
  run: GitRunner;
  /** Runs `fn` after every earlier operation on the same mirror (ref locks). */
  serial: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
  has: (dir: string, sha: string) => Promise<boolean>;
  /** SHAs per fetch command line (default 256). */
  maxPerFetch?: number;
}

export function createFetchBatcher(deps: FetchBatcherDeps): FetchBatcher {
  const max = deps.maxPerFetch ?? 256;
  // Per mirror: SHAs not fetched yet → who waits for them; `scheduled` while a flush is queued but not started.
  const pending = new Map<string, { dir: string; url: string; waiting: Map<string, Waiter[]>; scheduled: boolean }>();
  let started = 0;

  async function fetchAll(dir: string, shas: string[]): Promise<unknown> {
    // Fetch by SHA (uploadpack.allowReachableSHA1InWant / protocol v2 on GitHub); fall back to all heads for servers
    // that refuse it, which also covers file:// remotes with default settings. Returns the first error, if any.
    started += 1;
    try {
      await deps.run(['-c', 'protocol.version=2', 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', 'origin', ...shas], dir);
      return undefined;
    } catch (first) {
      started += 1;
      await deps.run(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', 'origin', '+refs/heads/*:refs/heads/*'], dir);
      return first;
    }
  }

  async function flush(fetchUrl: string): Promise<void> {
    const entry = pending.get(fetchUrl);
    if (!entry) return;
    entry.scheduled = false;
    const batch = [...entry.waiting.entries()].slice(0, max);
    for (const [sha] of batch) entry.waiting.delete(sha);
    if (entry.waiting.size === 0) pending.delete(fetchUrl);
    else schedule(fetchUrl, entry);
    const settle = async (err: unknown) => {
      for (const [sha, waiters] of batch) {
        const ok = await deps.has(entry.dir, sha).catch(() => false);
        const e = ok
          ? undefined
          : err
            ? classifyGitError(err, entry.url, sha)
            : new GitError('GIT_COMMIT_NOT_FOUND', `commit ${sha} not found in ${entry.url}`, false);
        for (const w of waiters) {
          if (e) w.reject(e);
          else w.resolve();
        }
      }
    };
    // An earlier fetch (or the branch fetch of a proof) may have brought some of them already.
    const missing: string[] = [];
    for (const [sha] of batch) if (!(await deps.has(entry.dir, sha).catch(() => false))) missing.push(sha);
    if (missing.length === 0) return settle(undefined);
    let first: unknown;
    try {
      first = await fetchAll(entry.dir, missing);
    } catch (second) {
      // Neither way worked: the whole batch failed for a reason of the remote's (unreachable, no such repository).
      for (const [sha, waiters] of batch) {
        const e = classifyGitError(second, entry.url, sha);
        for (const w of waiters) w.reject(e);
      }
      return;
    }
    await settle(first);
  }

  function schedule(fetchUrl: string, entry: { scheduled: boolean }): void {
    entry.scheduled = true;
    void deps.serial(fetchUrl, () => flush(fetchUrl)).catch(() => undefined);
  }

  return {
    fetches: () => started,
    fetch(fetchUrl, dir, url, sha) {
      return new Promise<void>((resolve, reject) => {
        let entry = pending.get(fetchUrl);
        if (!entry) {
          entry = { dir, url, waiting: new Map(), scheduled: false };
          pending.set(fetchUrl, entry);
        }
        const list = entry.waiting.get(sha) ?? [];
        list.push({ resolve, reject });
        entry.waiting.set(sha, list);
        if (!entry.scheduled) schedule(fetchUrl, entry);
      });
    },
  };
}
