/**
 * Running the `git` binary: no shell, a fixed environment, and the token only through GIT_CONFIG_* variables scoped to
 * the configured URL prefixes (never argv, never a URL on disk, never a log line).
 */
import { execFile } from 'node:child_process';
import { BaseError } from '@gitops-gate/contracts/errors';

export const GIT_ERROR_CODES = [
  'GIT_ANCESTRY_FAILED',
  'GIT_BAD_BRANCH',
  'GIT_BAD_SHA',
  'GIT_COMMIT_NOT_FOUND',
  'GIT_FETCH_FAILED',
  'GIT_HOST_NOT_ALLOWED',
  'GIT_NOT_FOLLOWED',
  'GIT_REPOSITORY_UNAVAILABLE',
] as const;
export type GitErrorCode = (typeof GIT_ERROR_CODES)[number];

export class GitError extends BaseError<GitErrorCode> {
  /** Transient errors (network, lock contention) are worth a retry; permanent ones (unknown object) are not. */
  readonly transient: boolean;
  constructor(code: GitErrorCode, message: string, transient: boolean, options?: { cause?: unknown }) {
    super(code, message, options);
    this.transient = transient;
  }
}

/** A full object name (SHA-1 or SHA-256); anything else never reaches git. */
export const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export function assertSha(sha: string): void {
  if (!SHA.test(sha)) throw new GitError('GIT_BAD_SHA', `not a full commit sha: ${JSON.stringify(sha)}`, false);
}

export type GitRunner = (
  args: string[],
  cwd?: string,
  encoding?: 'buffer' | 'utf8',
) => Promise<{ stdout: Buffer | string; stderr: string }>;

export interface GitExec {
  env(): NodeJS.ProcessEnv;
  run: GitRunner;
}

export function createGitExec(opts: { token: () => string | undefined; credentialPrefixes: string[]; timeoutMs: number }): GitExec {
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
    const token = opts.token();
    if (token) {
      // Scoped per URL prefix (http.<url>.extraHeader): git attaches it only to requests under a configured prefix.
      const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
      for (const p of opts.credentialPrefixes) config.push([`http.${p}.extraHeader`, `Authorization: Basic ${basic}`]);
    }
    e.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([k, v], i) => {
      e[`GIT_CONFIG_KEY_${i}`] = k;
      e[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return e;
  }
  const run: GitRunner = (args, cwd, encoding = 'utf8') =>
    new Promise((resolve, reject) => {
      execFile(
        'git',
        args,
        { cwd, env: env(), timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: encoding === 'buffer' ? 'buffer' : 'utf8' },
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
  return { env, run };
}

/** A git failure as a GitError: credentials in URLs redacted, "not there" told apart from "try again". */
export function classifyGitError(err: unknown, url: string, what: string): GitError {
  const msg = err instanceof Error ? err.message : String(err);
  const redacted = msg.replace(/(https?:\/\/)[^@/\s]+@/g, '$1***@');
  if (/not our ref|no such remote ref|couldn't find remote ref|unadvertised object/i.test(msg)) {
    return new GitError('GIT_COMMIT_NOT_FOUND', `commit ${what} not found in ${url}: ${redacted}`, false);
  }
  if (/Repository not found|does not appear to be a git repository|not found/i.test(msg)) {
    // A missing repository may be a permissions glitch or a mirror still syncing: retry a few times.
    return new GitError('GIT_REPOSITORY_UNAVAILABLE', `cannot fetch ${url}: ${redacted}`, true);
  }
  return new GitError('GIT_FETCH_FAILED', `fetching ${what} from ${url} failed: ${redacted}`, true);
}
