/**
 * Git access through the real `git` binary: a cache of bare mirrors, fetched by SHA, with URL rewrites like git's
 * `insteadOf` (air-gapped mirrors, tests) and token credentials that never appear in argv, URLs on disk, or logs.
 */
import { createBatchReader, type BatchReader } from './batch-reader.js';
import { createBranchReader } from './branch-reader.js';
import { createCommitGraph } from './commit-graph.js';
import { createFetchBatcher } from './fetch-batcher.js';
import { assertSha, classifyGitError, createGitExec, GitError, SHA } from './git-exec.js';
import { createMirrorStore } from './mirror-store.js';

export { GIT_ERROR_CODES, GitError, type GitErrorCode } from './git-exec.js';
export { parseCommitNode } from './commit-graph.js';

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
  /** Called for every git process this mirror starts (tests and benches count them). */
  onSpawn?: (args: readonly string[]) => void;
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
   * `freshSince` (epoch ms): a read of the branch that started at or after it may be shared with other callers
   * (default: now, i.e. only a read not started yet).
   */
  proveOnBranch(
    url: string,
    sha: string,
    branch: string,
    opts?: { freshSince?: number },
  ): Promise<{ head: string | null; onBranch: boolean }>;
  /** Up to `max` commits reachable from sha, newest first (sha itself included). */
  recentAncestors(url: string, sha: string, max: number): Promise<string[]>;
}

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

// Where a credential may be sent is decided in contracts (the gate's pure core uses it too).
import { credentialPrefix } from '@gitops-gate/contracts';
export { credentialPrefix };

export function rewriteUrl(url: string, rewrites: Record<string, string>): string {
  let best = '';
  for (const prefix of Object.keys(rewrites)) {
    if (url.startsWith(prefix) && prefix.length > best.length) best = prefix;
  }
  return best ? `${rewrites[best]}${url.slice(best.length)}` : url;
}

export function createGitMirror(options: GitMirrorOptions): GitMirror {
  const rewrites = options.urlRewrites ?? {};
  const exec = createGitExec({
    token: () => (typeof options.httpToken === 'function' ? options.httpToken() : options.httpToken),
    credentialPrefixes: (options.credentialPrefixes ?? ['github.com']).map(credentialPrefix),
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  const git: typeof exec.run = (args, cwd, encoding) => {
    options.onSpawn?.(args);
    return exec.run(args, cwd, encoding);
  };
  const store = createMirrorStore(options.cacheDir, git);
  // A commit present in a mirror stays present (gc is off): remembered, bounded, oldest forgotten first.
  const known = new Set<string>();
  const ancestry = new Map<string, boolean>();
  const remember = <K>(set: { size: number; keys(): IterableIterator<K>; delete(k: K): boolean }, max: number) => {
    if (set.size > max) set.delete(set.keys().next().value as K);
  };

  // One persistent `git cat-file --batch` per mirror (see batch-reader.ts); a spawn per read is the fallback.
  const readers = new Map<string, BatchReader>();
  async function readObject(dir: string, sha: string): Promise<Buffer | null> {
    let reader = readers.get(dir);
    if (!reader) {
      reader = createBatchReader(dir, exec.env(), {
        timeoutMs: options.timeoutMs ?? 30_000,
        onSpawn: () => options.onSpawn?.(['cat-file', '--batch']),
      });
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
      reader.close();
      try {
        return (await git(['cat-file', 'commit', sha], dir, 'buffer')).stdout as Buffer;
      } catch {
        return null;
      }
    }
  }
  const hasCommit = async (dir: string, sha: string) => (await readObject(dir, sha)) !== null;
  const batcher = createFetchBatcher({ run: git, serial: store.serial, has: hasCommit });
  const branches = createBranchReader({ run: git, serial: store.serial });
  const graph = createCommitGraph(readObject);

  const mirror: GitMirror = {
    resolveUrl: (url) => rewriteUrl(url, rewrites),
    async ensureCommit(url, sha) {
      assertSha(sha);
      const fetchUrl = rewriteUrl(url, rewrites);
      const key = `${fetchUrl}\0${sha}`;
      if (known.has(key)) return store.path(fetchUrl);
      // Creating the mirror is queued like a fetch; a warm mirror answers from the reader without waiting in line.
      const dir = await store.serial(fetchUrl, () => store.ensure(fetchUrl));
      if (!(await hasCommit(dir, sha))) await batcher.fetch(fetchUrl, dir, url, sha);
      known.add(key);
      remember(known, 100_000);
      return dir;
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
      let result = await graph.isAncestor(dir, ancestor, descendant);
      if (result === undefined) {
        // The walk gave up (very deep history): git decides.
        try {
          await git(['merge-base', '--is-ancestor', ancestor, descendant], dir);
          result = true;
        } catch (err) {
          if ((err as { exitCode?: unknown }).exitCode !== 1)
            throw new GitError('GIT_ANCESTRY_FAILED', `merge-base failed: ${(err as Error).message}`, true);
          result = false;
        }
      }
      ancestry.set(key, result);
      remember(ancestry, 10_000);
      return result;
    },
    async recentAncestors(url, sha, max) {
      const dir = await mirror.ensureCommit(url, sha);
      const n = Math.max(1, Math.floor(max));
      const walked = await graph.recent(dir, sha, n);
      if (walked) return walked;
      const { stdout } = await git(['rev-list', `--max-count=${n}`, sha], dir);
      return String(stdout)
        .split('\n')
        .filter((l) => SHA.test(l));
    },
    async proveOnBranch(url, sha, branch, opts) {
      assertSha(sha);
      if (!isSafeBranchName(branch))
        throw new GitError('GIT_BAD_BRANCH', `not a branch name git accepts: ${JSON.stringify(branch)}`, false);
      const fetchUrl = rewriteUrl(url, rewrites);
      // The remote's own ref, never the webhook's word: fetched into a namespace of the gate's (a fetch by SHA writes
      // no ref), forced so a rewritten branch is seen as it is now. Fetched first: a commit on the branch arrives with
      // it, so the fetch by SHA below (and the verifier's readCommit) finds it present — one fetch per push.
      const dir = await store.serial(fetchUrl, () => store.ensure(fetchUrl));
      const head = await branches.head(fetchUrl, dir, url, branch, opts?.freshSince);
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
        throw classifyGitError(err, url, 'HEAD');
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
