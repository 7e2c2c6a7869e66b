/**
 * A local GitHub REST API for tests and `npm start` (like k8s-sandbox for Kubernetes): the endpoints gitops-gate
 * calls, with GitHub's authentication rules (an App JWT signed RS256 with the App's key, `iat`/`exp` limits;
 * installation tokens that expire and are scoped to the installation's repositories), `x-ratelimit-*` headers,
 * primary and secondary rate limits (403 with `retry-after`) and injected 5xx, so the real Octokit clients are tested
 * against the behaviour they will meet. This file wires the pieces — state (state.ts), App JWT endpoints
 * (app-auth.ts), quotas (quota.ts), installation endpoints (repo-routes.ts) — and hands tests the operator controls.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { handleAppEndpoint } from './app-auth.js';
import { takeQuota } from './quota.js';
import { json, replyTo } from './reply.js';
import { handleInstallationRequest } from './repo-routes.js';
import { createEmulatorState, liveToken, type EmulatorState } from './state.js';
import type { GitHubEmulator, GitHubEmulatorOptions } from './types.js';

export { checkAppJwt } from './app-auth.js';
export type { CheckRun, CommitStatus, EmulatedInstallation, EmulatedRepo, GitHubEmulator, GitHubEmulatorOptions } from './types.js';

export async function startGitHubEmulator(opts: GitHubEmulatorOptions): Promise<GitHubEmulator> {
  const s = createEmulatorState(opts);
  const server: Server = createServer((req, res) => {
    const entry = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0 };
    s.requests.push(entry);
    handle(s, req, res)
      .then((status) => {
        entry.status = status;
      })
      .catch(() => {
        entry.status = 400;
        if (!res.headersSent) json(res, 400, { message: 'Problems parsing JSON' });
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  s.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return controls(s, server);
}

/** The emulator handle: what it recorded, and the operator controls the tests use to make GitHub misbehave. */
function controls(s: EmulatorState, server: Server): GitHubEmulator {
  return {
    url: s.url,
    checkRuns: s.checkRuns,
    statuses: s.statuses,
    requests: s.requests,
    tokenValid: (t) => liveToken(s, t) !== undefined,
    tokenInstallation: (t) => liveToken(s, t)?.installationId,
    failNext(n, status = 502) {
      s.failures = { n, status };
    },
    secondaryLimit(n, retryAfterSeconds) {
      s.secondary = { n, retryAfter: retryAfterSeconds };
    },
    setRemaining(n, resetInSeconds = 3600) {
      s.remaining = n;
      s.resetAt = Math.floor(s.now() / 1000) + resetInSeconds;
    },
    renameRepo(id, owner, name) {
      for (const i of s.installations) for (const r of i.repositories) if (r.id === id) Object.assign(r, { owner, name });
    },
    addRepo(installationId, repo) {
      s.installations.find((i) => i.id === installationId)?.repositories.push(repo);
    },
    removeRepo(id) {
      for (const i of s.installations) i.repositories = i.repositories.filter((r) => r.id !== id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One request, in GitHub's order: injected failures, authentication (App JWT or installation token), quota, route. */
async function handle(s: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<number> {
  const u = new URL(req.url ?? '/', 'http://emulator.invalid');
  const path = u.pathname.replace(/^\/api\/v3/, '');
  const method = req.method ?? 'GET';
  const reply = replyTo(s, res);
  // Not GitHub's: what a person trying the emulator looks at instead of the commit page.
  if (path === '/_emulator/state' && method === 'GET') return reply(200, { checkRuns: s.checkRuns, statuses: s.statuses });
  if (s.failures.n > 0) {
    s.failures.n--;
    return reply(s.failures.status, { message: 'Server Error' });
  }
  const auth = req.headers.authorization ?? '';
  const bearer = /^(?:bearer|token) (.+)$/i.exec(auth)?.[1];
  if (!bearer) return reply(401, { message: 'Requires authentication' });

  const app = handleAppEndpoint(s, path, method, bearer, reply);
  if (app !== undefined) return app;

  const tok = liveToken(s, bearer);
  if (!tok) return reply(401, { message: 'Bad credentials' });
  const inst = s.installations.find((i) => i.id === tok.installationId);
  if (!inst) return reply(401, { message: 'Bad credentials' });
  const limited = takeQuota(s, method, reply);
  if (limited !== undefined) return limited;
  return handleInstallationRequest(s, req, u, path, inst, reply);
}
