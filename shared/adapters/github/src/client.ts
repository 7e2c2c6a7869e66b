/**
 * The GitHub API as gitops-gate uses it: as a GitHub App (installation tokens from `@octokit/auth-app`, cached per
 * installation until shortly before they expire) or with a personal token. Every client honours GitHub's limits:
 * `@octokit/plugin-throttling` waits out primary (`x-ratelimit-*`) and secondary (`retry-after`) limits and
 * `@octokit/plugin-retry` retries 5xx with backoff.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import { BaseError } from '@gitops-gate/contracts/errors';

export const GITHUB_ERROR_CODES = ['GITHUB_NO_INSTALLATION', 'GITHUB_BAD_REPO_URL', 'GITHUB_AUTH_FAILED', 'GITHUB_REPORT_BUSY'] as const;
export type GitHubErrorCode = (typeof GITHUB_ERROR_CODES)[number];
export class GitHubError extends BaseError<GitHubErrorCode> {}

// The throttling and retry plugins add no request methods: callers see the core client, with typed routes.
export type GitHubOctokit = Octokit;

export interface GitHubClientOptions {
  /** REST base: `https://api.github.com`, or `https://<ghes>/api/v3`. */
  apiUrl: string;
  app?: { appId: number; privateKey: string; installationId?: number };
  /** Personal token (commit statuses instead of check runs; no installation scoping). */
  token?: string;
  /** Tokens are renewed when they have less than this left (GitHub issues them for an hour). */
  refreshBeforeMs?: number;
  /** Gap between content-creating requests (GitHub asks for about a second; tests use less). */
  writeMinTimeMs?: number;
  /**
   * Retries of one request on a rate limit before it fails (and its job is retried later by the queue, possibly after
   * later jobs). High by default: waiting out `retry-after` in place keeps reports in the order they were decided.
   */
  maxRateLimitRetries?: number;
  /** Multiplier of retry-after / backoff seconds (1000 = real seconds; tests shrink it). */
  retryAfterBaseValue?: number;
  onLimit?: (kind: 'primary' | 'secondary', retryAfterSeconds: number, route: string) => void;
  now?: () => number;
}

export interface GitHubClient {
  mode: 'app' | 'token';
  /** An Octokit for one installation (App) or for the personal token (installationId ignored). */
  octokit(installationId?: number): GitHubOctokit;
  /** The installation token (App) or the personal token; cached, renewed before expiry. */
  token(installationId?: number): Promise<string>;
  /** The installation that holds a repository: the configured one, else asked once (App JWT) and cached. */
  installationFor(owner: string, repo: string): Promise<number | undefined>;
  /**
   * The token git may send now (synchronous, for `http.<prefix>.extraHeader`): the configured installation's cached
   * token, refreshed in the background ahead of expiry. Undefined until the first one was fetched.
   */
  currentGitToken(): string | undefined;
  /** Fetches the first git token (App with an installation id) so fetches at start-up already carry it. */
  start(): Promise<void>;
}

/** `{ owner, repo }` of a repository URL (`https://github.com/org/app`, GHES `https://ghe.example/org/app`). */
export function repoCoordinates(repoUrl: string): { owner: string; repo: string } {
  let path: string;
  try {
    path = new URL(repoUrl).pathname;
  } catch {
    throw new GitHubError('GITHUB_BAD_REPO_URL', `repository URL ${JSON.stringify(repoUrl)} is not a URL`);
  }
  const parts = path
    .replace(/\.git$/, '')
    .split('/')
    .filter(Boolean);
  const owner = parts.at(-2);
  const repo = parts.at(-1);
  if (!owner || !repo) throw new GitHubError('GITHUB_BAD_REPO_URL', `repository URL ${repoUrl} does not name an owner and a repository`);
  return { owner, repo };
}

export function createGitHubClient(opts: GitHubClientOptions): GitHubClient {
  const now = opts.now ?? Date.now;
  const refreshBefore = opts.refreshBeforeMs ?? 5 * 60_000;
  const maxRetries = opts.maxRateLimitRetries ?? 20;
  // One write limiter per client, not the plugin's process-global one: tests and several clients stay independent.
  const write = new Bottleneck.Group({ maxConcurrent: 1, minTime: opts.writeMinTimeMs ?? 1000 });
  const Client = Octokit.plugin(throttling, retry);
  const base = {
    baseUrl: opts.apiUrl.replace(/\/+$/, ''),
    userAgent: 'gitops-gate',
    throttle: {
      write,
      retryAfterBaseValue: opts.retryAfterBaseValue ?? 1000,
      onRateLimit: (after: number, o: { method: string; url: string }, _k: unknown, count: number) => {
        opts.onLimit?.('primary', after, `${o.method} ${o.url}`);
        return count < maxRetries;
      },
      onSecondaryRateLimit: (after: number, o: { method: string; url: string }, _k: unknown, count: number) => {
        opts.onLimit?.('secondary', after, `${o.method} ${o.url}`);
        return count < maxRetries;
      },
    },
    retry: { retryAfterBaseValue: opts.retryAfterBaseValue ?? 1000 },
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  };

  if (!opts.app) {
    const token = opts.token;
    if (!token) throw new GitHubError('GITHUB_AUTH_FAILED', 'GitHub client needs an App or a token');
    const octokit = new Client({ ...base, auth: token });
    return {
      mode: 'token',
      octokit: () => octokit,
      token: () => Promise.resolve(token),
      installationFor: () => Promise.resolve(undefined),
      currentGitToken: () => token,
      start: () => Promise.resolve(),
    };
  }

  const app = opts.app;
  // auth-app signs the App JWT (RS256) and exchanges it; the request it uses goes through no throttling, so token
  // requests never queue behind a rate-limited write.
  const appAuth = createAppAuth({ appId: app.appId, privateKey: app.privateKey, request: new Octokit({ baseUrl: base.baseUrl }).request });
  const tokens = new Map<number, { token: string; expiresAt: number }>();
  const pending = new Map<number, Promise<string>>();
  const installations = new Map<string, number>();
  const clients = new Map<number, GitHubOctokit>();

  async function token(installationId = app.installationId): Promise<string> {
    if (installationId === undefined)
      throw new GitHubError('GITHUB_NO_INSTALLATION', 'no installation id: set GITHUB_APP_INSTALLATION_ID or send installation.id');
    const cached = tokens.get(installationId);
    if (cached && cached.expiresAt - now() > refreshBefore) return cached.token;
    let p = pending.get(installationId);
    if (!p) {
      // refresh: auth-app keeps its own cache until a minute before expiry; ours renews earlier.
      p = appAuth({ type: 'installation', installationId, refresh: true })
        .then((a) => {
          tokens.set(installationId, { token: a.token, expiresAt: Date.parse(a.expiresAt) });
          return a.token;
        })
        .catch((err: unknown) => {
          throw new GitHubError('GITHUB_AUTH_FAILED', `installation ${installationId}: no access token`, { cause: err });
        })
        .finally(() => pending.delete(installationId));
      pending.set(installationId, p);
    }
    return p;
  }

  return {
    mode: 'app',
    octokit(installationId = app.installationId) {
      if (installationId === undefined) throw new GitHubError('GITHUB_NO_INSTALLATION', 'no installation id');
      let c = clients.get(installationId);
      if (!c) {
        const client = new Client(base);
        client.hook.before('request', async (o) => {
          o.headers.authorization = `token ${await token(installationId)}`;
        });
        clients.set(installationId, client);
        c = client;
      }
      return c;
    },
    token,
    async installationFor(owner, repo) {
      if (app.installationId !== undefined) return app.installationId;
      const key = `${owner}/${repo}`.toLowerCase();
      const known = installations.get(key);
      if (known !== undefined) return known;
      const { token: jwt } = await appAuth({ type: 'app' });
      const res = await new Client({ ...base, auth: jwt })
        .request('GET /repos/{owner}/{repo}/installation', { owner, repo })
        .catch((err: { status?: number }) => {
          if (err.status === 404) return undefined;
          throw err;
        });
      const id = (res?.data as { id?: number } | undefined)?.id;
      if (id !== undefined) installations.set(key, id);
      return id;
    },
    currentGitToken() {
      const id = app.installationId;
      if (id === undefined) return undefined;
      const cached = tokens.get(id);
      // Renewed in the background: git's environment is built synchronously, a fetch must not wait for GitHub.
      if (!cached || cached.expiresAt - now() <= refreshBefore) void token(id).catch(() => undefined);
      return cached && cached.expiresAt > now() ? cached.token : undefined;
    },
    async start() {
      if (app.installationId !== undefined) await token(app.installationId);
    },
  };
}
