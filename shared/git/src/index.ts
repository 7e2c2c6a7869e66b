/**
 * Git access through the real `git` binary: a cache of bare mirrors, fetched by SHA, with URL rewrites like git's
 * `insteadOf` (air-gapped mirrors, tests) and token credentials that never appear in argv, URLs on disk, or logs.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createBatchReader, type BatchReader } from './batch-reader.js';

export class GitError extends Error {
  readonly code: string;
  /** Transient errors (network, lock contention) are worth a retry; permanent ones (unknown object) are not. */
  readonly transient: boolean;
  constructor(code: string, message: string, transient: boolean) {
    super(message);
    this.name = 'GitError';
    this.code = code;
    this.transient = transient;
  }
}

export interface GitMirrorOptions {
  cacheDir: string;
  /** `{ "<prefix as seen in webhooks>": "<prefix to fetch from>" }`, longest prefix wins (as with insteadOf). */
  urlRewrites?: Record<string, string>;
  /**
   * Token for https remotes, sent as HTTP basic auth through an environment-provided header. A function is asked on
   * every git command (a GitHub App installation token, renewed before it expires).
   */
  httpToken?: string | (() => string | undefined);
  /**
   * Where the token may go: hosts (`github.com`, `git.example.com:8443`, meaning `https://<host>/`) or URL prefixes
   * (`http://127.0.0.1:8080/org/`). Each becomes git's `http.<prefix>.extraHeader`, which git matches against the
   * URL it actually fetches (after rewrites), so no webhook, Application or rewrite can send the token elsewhere.
   * Default `['github.com']`.
   */
  credentialPrefixes?: string[];
  /** Per git command timeout. */
  timeoutMs?: number;
}

export interface GitMirror {
  /** Applies URL rewrites; exposed for tests and logs. */
  resolveUrl(url: string): string;
  /** Makes sure `sha` is present in the mirror of `url` and returns the mirror path. */
  ensureCommit(url: string, sha: string): Promise<string>;
  /** Raw `git cat-file commit <sha>` bytes. */
  readCommit(url: string, sha: string): Promise<Buffer>;
  /** True when `ancestor` is an ancestor of (or equal to) `descendant`; both are fetched first. */
  isAncestor(url: string, ancestor: string, descendant: string): Promise<boolean>;
  /** `git ls-remote --heads`: branch name → sha. */
  listHeads(url: string): Promise<Map<string, string>>;
  /**
   * Reads `refs/heads/<branch>` from the remote itself (a fetch of that one ref into the mirror) and proves whether
   * `sha` is its head or an ancestor of it. `head` is null when the remote has no such branch (deleted).
   */
  proveOnBranch(url: string, sha: string, branch: string): Promise<{ head: string | null; onBranch: boolean }>;
  /** Up to `max` commits reachable from sha, newest first (sha itself included). */
  recentAncestors(url: string, sha: string, max: number): Promise<string[]>;
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/**
 * A branch name safe to put in a refspec: git's ref rules (no `..`, `@{`, control characters, space, `~^:?*[\\`, no
 * leading `-` or `/`, no `.lock` component), so a name from a webhook can never widen the fetch (`*`), write another
 * ref (`a:refs/heads/b`) or read as an option (`--upload-pack=…`).
 */
export function isSafeBranchName(branch: string): boolean {
  if (branch.length === 0 || branch.length > 255) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(branch)) return false;
  if (branch.startsWith('-') || branch.startsWith('/') || branch.endsWith('/') || branch.endsWith('.')) return false;
  if (branch.includes('..') || branch.includes('@{') || branch.includes('//') || branch === '@') return false;
  return branch.split('/').every((c) => c.length > 0 && !c.startsWith('.') && !c.endsWith('.lock'));
}

/** `github.com` → `https://github.com/`; a URL prefix stays as written (with a trailing slash). */
export function credentialPrefix(entry: string): string {
  const e = entry.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e)) return e.endsWith('/') ? e : `${e}/`;
  return `https://${e.replace(/\/+$/, '')}/`;
}

export function rewriteUrl(url: string, rewrites: Record<string, string>): string {
  let best = '';
  for (const prefix of Object.keys(rewrites)) {
    if (url.startsWith(prefix) && prefix.length > best.length) best = prefix;
  }
  return best ? `${rewrites[best]}${url.slice(best.length)}` : url;
}

export function createGitMirror(options: GitMirrorOptions): GitMirror {
  const rewrites = options.urlRewrites ?? {};
  const timeout = options.timeoutMs ?? 120_000;
  const credentialPrefixes = (options.credentialPrefixes ?? ['github.com']).map(credentialPrefix);
  // Serialise operations per mirror: concurrent fetches into one bare repo fight over ref locks.
  const queues = new Map<string, Promise<unknown>>();
  // Facts about immutable objects, remembered to save a git process per question: a commit present in a mirror
  // stays present (gc is off), and ancestry between two commits never changes. Bounded: oldest forgotten first.
  const known = new Set<string>();
  const ancestry = new Map<string, boolean>();
  const remember = <K>(set: { size: number; keys(): IterableIterator<K>; delete(k: K): boolean }, max: number) => {
    if (set.size > max) set.delete(set.keys().next().value as K);
  };

  function serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = queues.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return next;
  }

  function env(): NodeJS.ProcessEnv {
    const e: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      LC_ALL: 'C',
    };
    // A redirect would carry the header (git sends extraHeader on every request of the session, wherever the
    // first answer sent it): a fetch follows no redirect at all, so a moved repository fails instead.
    const config: [string, string][] = [['http.followRedirects', 'false']];
    const token = typeof options.httpToken === 'function' ? options.httpToken() : options.httpToken;
    if (token) {
      // Passed through GIT_CONFIG_* env, not argv, so `ps` and error messages never show it. Scoped per URL prefix
      // (http.<url>.extraHeader): git attaches it only to requests under a configured prefix.
      const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
      for (const p of credentialPrefixes) config.push([`http.${p}.extraHeader`, `Authorization: Basic ${basic}`]);
    }
    e.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([k, v], i) => {
      e[`GIT_CONFIG_KEY_${i}`] = k;
      e[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return e;
  }

  function git(args: string[], cwd?: string, encoding: 'buffer' | 'utf8' = 'utf8'): Promise<{ stdout: Buffer | string; stderr: string }> {
    return new Promise((resolve, reject) => {
      execFile(
        'git',
        args,
        { cwd, env: env(), timeout, maxBuffer: 64 * 1024 * 1024, encoding: encoding === 'buffer' ? 'buffer' : 'utf8' },
        (err, stdout, stderr) => {
          const errText = Buffer.isBuffer(stderr) ? stderr.toString('utf8') : String(stderr ?? '');
          if (err) {
            const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
            reject(Object.assign(new Error(errText.trim() || e.message), { exitCode: e.code, killed: e.killed, stderr: errText }));
            return;
          }
          resolve({ stdout: stdout as Buffer | string, stderr: errText });
        },
      );
    });
  }

  function mirrorPath(url: string): string {
    const h = createHash('sha256').update(url).digest('hex').slice(0, 24);
    return join(options.cacheDir, `${h}.git`);
  }

  async function ensureMirror(fetchUrl: string): Promise<string> {
    const dir = mirrorPath(fetchUrl);
    try {
      await stat(join(dir, 'HEAD'));
      return dir;
    } catch {
      // not there yet
    }
    await mkdir(options.cacheDir, { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await git(['init', '--bare', '--quiet', dir]);
    await git(['config', 'remote.origin.url', fetchUrl], dir);
    // Mirrors only serve verification: no gc surprises mid-fetch, never prompt, keep fetched objects.
    await git(['config', 'gc.auto', '0'], dir);
    // No background `git maintenance` process after every fetch.
    await git(['config', 'maintenance.auto', 'false'], dir);
    return dir;
  }

  // One persistent `git cat-file --batch` per mirror (see batch-reader.ts); a spawn per read is the fallback.
  const readers = new Map<string, BatchReader>();
  async function readObject(dir: string, sha: string): Promise<Buffer | null> {
    let reader = readers.get(dir);
    if (!reader) {
      reader = createBatchReader(dir, env());
      readers.set(dir, reader);
      // One process per mirror, for the mirrors in use: beyond 64, the longest-open one is closed.
      if (readers.size > 64) {
        const [oldDir, oldReader] = readers.entries().next().value as [string, BatchReader];
        oldReader.close();
        readers.delete(oldDir);
      }
    }
    try {
      const o = await reader.read(sha);
      return o && o.type === 'commit' ? o.data : null;
    } catch {
      readers.delete(dir);
      try {
        return (await git(['cat-file', 'commit', sha], dir, 'buffer')).stdout as Buffer;
      } catch {
        return null;
      }
    }
  }

  async function hasCommit(dir: string, sha: string): Promise<boolean> {
    return (await readObject(dir, sha)) !== null;
  }

  function classify(err: unknown, url: string, sha: string): GitError {
    const msg = err instanceof Error ? err.message : String(err);
    const redacted = msg.replace(/(https?:\/\/)[^@/\s]+@/g, '$1***@');
    if (/not our ref|no such remote ref|couldn't find remote ref|unadvertised object/i.test(msg)) {
      return new GitError('GIT_COMMIT_NOT_FOUND', `commit ${sha} not found in ${url}: ${redacted}`, false);
    }
    if (/Repository not found|does not appear to be a git repository|not found/i.test(msg)) {
      // A missing repository may be a permissions glitch or a mirror still syncing: retry a few times.
      return new GitError('GIT_REPOSITORY_UNAVAILABLE', `cannot fetch ${url}: ${redacted}`, true);
    }
    return new GitError('GIT_FETCH_FAILED', `fetching ${sha} from ${url} failed: ${redacted}`, true);
  }

  async function fetchSha(dir: string, sha: string, url: string): Promise<void> {
    try {
      // Fetch by SHA (uploadpack.allowReachableSHA1InWant / protocol v2 on GitHub); fall back to all heads for
      // servers that refuse it, which also covers file:// remotes with default settings.
      await git(['-c', 'protocol.version=2', 'fetch', '--quiet', '--no-tags', 'origin', sha], dir);
    } catch (first) {
      try {
        await git(['fetch', '--quiet', '--no-tags', 'origin', '+refs/heads/*:refs/heads/*'], dir);
      } catch (second) {
        throw classify(second, url, sha);
      }
      if (!(await hasCommit(dir, sha))) throw classify(first, url, sha);
    }
  }

  const mirror: GitMirror = {
    resolveUrl: (url) => rewriteUrl(url, rewrites),
    async ensureCommit(url, sha) {
      if (!SHA.test(sha)) throw new GitError('GIT_BAD_SHA', `not a full commit sha: ${JSON.stringify(sha)}`, false);
      const fetchUrl = rewriteUrl(url, rewrites);
      const key = `${fetchUrl}\0${sha}`;
      if (known.has(key)) return mirrorPath(fetchUrl);
      return serial(fetchUrl, async () => {
        const dir = await ensureMirror(fetchUrl);
        if (!(await hasCommit(dir, sha))) {
          await fetchSha(dir, sha, url);
          if (!(await hasCommit(dir, sha))) throw new GitError('GIT_COMMIT_NOT_FOUND', `commit ${sha} not found in ${url}`, false);
        }
        known.add(key);
        remember(known, 100_000);
        return dir;
      });
    },
    async readCommit(url, sha) {
      const dir = await mirror.ensureCommit(url, sha);
      const raw = await readObject(dir, sha);
      if (!raw) throw new GitError('GIT_COMMIT_NOT_FOUND', `commit ${sha} not found in ${url}`, false);
      return raw;
    },
    async isAncestor(url, ancestor, descendant) {
      const key = `${rewriteUrl(url, rewrites)}\0${ancestor}..${descendant}`;
      const cached = ancestry.get(key);
      if (cached !== undefined) return cached;
      await mirror.ensureCommit(url, ancestor);
      const dir = await mirror.ensureCommit(url, descendant);
      let result: boolean;
      try {
        await git(['merge-base', '--is-ancestor', ancestor, descendant], dir);
        result = true;
      } catch (err) {
        if ((err as { exitCode?: unknown }).exitCode !== 1) throw new GitError('GIT_ANCESTRY_FAILED', `merge-base failed: ${(err as Error).message}`, true);
        result = false;
      }
      ancestry.set(key, result);
      remember(ancestry, 10_000);
      return result;
    },
    async recentAncestors(url, sha, max) {
      const dir = await mirror.ensureCommit(url, sha);
      const { stdout } = await git(['rev-list', `--max-count=${Math.max(1, Math.floor(max))}`, sha], dir);
      return String(stdout).split('\n').filter((l) => SHA.test(l));
    },
    async proveOnBranch(url, sha, branch) {
      if (!SHA.test(sha)) throw new GitError('GIT_BAD_SHA', `not a full commit sha: ${JSON.stringify(sha)}`, false);
      if (!isSafeBranchName(branch)) throw new GitError('GIT_BAD_BRANCH', `not a branch name git accepts: ${JSON.stringify(branch)}`, false);
      const fetchUrl = rewriteUrl(url, rewrites);
      // The remote's own ref, never the webhook's word: fetched into a namespace of the gate's (a fetch by SHA writes
      // no ref), forced so a rewritten branch is seen as it is now. Fetched first: a commit on the branch arrives with
      // it, so the fetch by SHA below (and the verifier's readCommit) finds it present — one fetch per push.
      const local = `refs/gitops-gate/heads/${branch}`;
      const head = await serial(fetchUrl, async () => {
        const dir = await ensureMirror(fetchUrl);
        try {
          await git(['-c', 'protocol.version=2', 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', 'origin', `+refs/heads/${branch}:${local}`], dir);
        } catch (err) {
          const e = classify(err, url, `refs/heads/${branch}`);
          if (e.code !== 'GIT_COMMIT_NOT_FOUND') throw e;
          // Branch gone: forget what this mirror last saw of it.
          await git(['update-ref', '-d', local], dir).catch(() => undefined);
          return null;
        }
        const out = String((await git(['rev-parse', '--verify', '--quiet', `${local}^{commit}`], dir)).stdout).trim();
        return SHA.test(out) ? out : null;
      });
      await mirror.ensureCommit(url, sha);
      if (head === null) return { head: null, onBranch: false };
      if (head === sha) return { head, onBranch: true };
      return { head, onBranch: await mirror.isAncestor(url, sha, head) };
    },
    async listHeads(url) {
      const fetchUrl = rewriteUrl(url, rewrites);
      let out: string;
      try {
        out = String((await git(['ls-remote', '--heads', fetchUrl])).stdout);
      } catch (err) {
        throw classify(err, url, 'HEAD');
      }
      const heads = new Map<string, string>();
      for (const line of out.split('\n')) {
        const [sha, ref] = line.split('\t');
        if (sha && ref?.startsWith('refs/heads/')) heads.set(ref.slice('refs/heads/'.length), sha);
      }
      return heads;
    },
  };
  return mirror;
}
