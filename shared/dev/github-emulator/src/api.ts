/**
 * A local GitHub REST API for tests and `npm start` (like k8s-sandbox for Kubernetes): the endpoints gitops-gate
 * calls, with GitHub's authentication rules (an App JWT signed RS256 with the App's key, `iat`/`exp` limits;
 * installation tokens that expire and are scoped to the installation's repositories), `x-ratelimit-*` headers,
 * primary and secondary rate limits (403 with `retry-after`) and injected 5xx, so the real Octokit clients are tested
 * against the behaviour they will meet.
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface EmulatedRepo {
  id: number;
  owner: string;
  name: string;
  defaultBranch?: string;
}

export interface EmulatedInstallation {
  id: number;
  account: string;
  repositories: EmulatedRepo[];
}

export interface CheckRun {
  id: number;
  repo: string;
  head_sha: string;
  name: string;
  status: string;
  conclusion: string | null;
  details_url?: string;
  external_id?: string;
  output?: { title?: string; summary?: string; text?: string };
  /** Every state it went through (create and each update), oldest first. */
  history: { status: string; conclusion: string | null; summary?: string }[];
}

export interface CommitStatus {
  id: number;
  repo: string;
  sha: string;
  state: string;
  context: string;
  description?: string;
  target_url?: string;
}

export interface GitHubEmulatorOptions {
  appId: number;
  /** PEM of the App's public key (GitHub keeps only this half). */
  appPublicKey: string | KeyObject;
  installations: EmulatedInstallation[];
  tokenTtlSeconds?: number;
  /** Primary limit per token per hour (x-ratelimit-limit). */
  rateLimit?: number;
  now?: () => number;
}

export interface GitHubEmulator {
  url: string;
  checkRuns: CheckRun[];
  statuses: CommitStatus[];
  /** Method and path of every request, with its answer. */
  requests: { method: string; path: string; status: number }[];
  /** Whether a token is a live installation token (the git host asks). */
  tokenValid(token: string): boolean;
  /** Installation id a token belongs to (undefined = unknown or expired). */
  tokenInstallation(token: string): number | undefined;
  /** The next n requests answer `status` (default 502). */
  failNext(n: number, status?: number): void;
  /** The next n write requests (POST/PATCH) get GitHub's secondary-limit 403 with `retry-after`. */
  secondaryLimit(n: number, retryAfterSeconds: number): void;
  /** Sets the remaining primary quota (0 = every request gets the primary-limit 403 until reset). */
  setRemaining(n: number, resetInSeconds?: number): void;
  /** Renames or moves a repository: same id, new owner/name (GitHub keeps the id). */
  renameRepo(id: number, owner: string, name: string): void;
  /** Adds a repository (e.g. a new one re-created under a deleted one's name: a different id). */
  addRepo(installationId: number | undefined, repo: EmulatedRepo): void;
  removeRepo(id: number): void;
  close(): Promise<void>;
}

interface Token {
  installationId: number;
  expiresAt: number;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
};

function b64urlJson(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** GitHub's App JWT rules: RS256, signed by the App's key, iss = App id, iat in the past, exp ≤ iat + 10 minutes. */
export function checkAppJwt(jwt: string, appId: number, key: KeyObject, nowSeconds: number): string | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return 'A JSON web token could not be decoded';
  const [h, p, s] = parts as [string, string, string];
  const header = b64urlJson(h);
  const payload = b64urlJson(p);
  if (!header || !payload) return 'A JSON web token could not be decoded';
  if (header.alg !== 'RS256') return "'alg' must be RS256";
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) return 'A JSON web token could not be decoded';
  if (String(payload.iss) !== String(appId)) return "'Issuer' claim ('iss') must be an Integer";
  const iat = payload.iat;
  const exp = payload.exp;
  if (typeof iat !== 'number' || typeof exp !== 'number') return "'Issued at' and 'Expiration time' claims are required";
  // GitHub tolerates a minute of clock drift on iat, and no JWT may live longer than ten minutes.
  if (iat > nowSeconds + 60) return "'Issued at' claim ('iat') must be an Integer representing a time in the past";
  if (exp <= nowSeconds)
    return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
  if (exp - iat > 600) return "'Expiration time' claim ('exp') is too far in the future";
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (chunks.length === 0) return {};
  const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

export async function startGitHubEmulator(opts: GitHubEmulatorOptions): Promise<GitHubEmulator> {
  const key = typeof opts.appPublicKey === 'string' ? createPublicKey(opts.appPublicKey) : opts.appPublicKey;
  const now = opts.now ?? Date.now;
  const ttl = (opts.tokenTtlSeconds ?? 3600) * 1000;
  const limit = opts.rateLimit ?? 5000;
  const installations = opts.installations.map((i) => ({ ...i, repositories: [...i.repositories] }));
  const tokens = new Map<string, Token>();
  const checkRuns: CheckRun[] = [];
  const statuses: CommitStatus[] = [];
  const requests: GitHubEmulator['requests'] = [];
  let failures: { n: number; status: number } = { n: 0, status: 502 };
  let secondary = { n: 0, retryAfter: 1 };
  let remaining = limit;
  let resetAt = Math.floor(now() / 1000) + 3600;
  let nextId = 1000;

  const findRepo = (owner: string, name: string) => {
    for (const inst of installations) {
      const r = inst.repositories.find((x) => x.owner.toLowerCase() === owner.toLowerCase() && x.name.toLowerCase() === name.toLowerCase());
      if (r) return { inst, repo: r };
    }
    return undefined;
  };
  const liveToken = (t: string): Token | undefined => {
    const tok = tokens.get(t);
    return tok && tok.expiresAt > now() ? tok : undefined;
  };
  const repoJson = (r: EmulatedRepo, base: string) => ({
    id: r.id,
    node_id: `R_${r.id}`,
    name: r.name,
    full_name: `${r.owner}/${r.name}`,
    owner: { login: r.owner },
    private: true,
    clone_url: `${base}/${r.owner}/${r.name}.git`,
    default_branch: r.defaultBranch ?? 'main',
  });

  let url = '';
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const u = new URL(req.url ?? '/', 'http://emulator.invalid');
    const path = u.pathname.replace(/^\/api\/v3/, '');
    const method = req.method ?? 'GET';
    const rateHeaders = () => ({
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, remaining)),
      'x-ratelimit-reset': String(resetAt),
      'x-ratelimit-used': String(limit - Math.max(0, remaining)),
      'x-ratelimit-resource': 'core',
    });
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      json(res, status, body, { ...rateHeaders(), ...extra });
      return status;
    };
    // Not GitHub's: what a person trying the emulator looks at instead of the commit page.
    if (path === '/_emulator/state' && method === 'GET') return send(200, { checkRuns, statuses });
    if (failures.n > 0) {
      failures.n--;
      return send(failures.status, { message: 'Server Error' });
    }
    const auth = req.headers.authorization ?? '';
    const bearer = /^(?:bearer|token) (.+)$/i.exec(auth)?.[1];
    if (!bearer) return send(401, { message: 'Requires authentication' });

    // App (JWT) endpoints.
    let m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    const repoInstallation = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path);
    if ((m && method === 'POST') || (repoInstallation && method === 'GET')) {
      const problem = checkAppJwt(bearer, opts.appId, key, Math.floor(now() / 1000));
      if (problem) return send(401, { message: problem });
      if (repoInstallation) {
        const found = findRepo(repoInstallation[1]!, repoInstallation[2]!);
        return found
          ? send(200, { id: found.inst.id, account: { login: found.inst.account }, app_id: opts.appId })
          : send(404, { message: 'Not Found' });
      }
      const inst = installations.find((i) => i.id === Number(m![1]));
      if (!inst) return send(404, { message: 'Not Found' });
      const token = `ghs_${randomBytes(18).toString('base64url')}`;
      const expiresAt = now() + ttl;
      tokens.set(token, { installationId: inst.id, expiresAt });
      return send(201, {
        token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        permissions: { contents: 'read', metadata: 'read', checks: 'write', statuses: 'write' },
        repository_selection: 'selected',
      });
    }

    const tok = liveToken(bearer);
    if (!tok) return send(401, { message: 'Bad credentials' });
    const inst = installations.find((i) => i.id === tok.installationId);
    if (!inst) return send(401, { message: 'Bad credentials' });

    if (now() / 1000 >= resetAt) {
      remaining = limit;
      resetAt = Math.floor(now() / 1000) + 3600;
    }
    if (remaining <= 0) {
      return send(403, { message: 'API rate limit exceeded for installation.' });
    }
    remaining--;
    if ((method === 'POST' || method === 'PATCH') && secondary.n > 0) {
      secondary.n--;
      return send(
        403,
        { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
        { 'retry-after': String(secondary.retryAfter) },
      );
    }

    if (path === '/installation/repositories' && method === 'GET') {
      return send(200, { total_count: inst.repositories.length, repositories: inst.repositories.map((r) => repoJson(r, url)) });
    }
    m = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) return send(404, { message: 'Not Found' });
    const repo = inst.repositories.find(
      (x) => x.owner.toLowerCase() === m[1]!.toLowerCase() && x.name.toLowerCase() === m[2]!.toLowerCase(),
    );
    // An installation token sees only its installation's repositories: others do not exist for it.
    if (!repo) return send(404, { message: 'Not Found' });
    const full = `${repo.owner}/${repo.name}`;
    const rest = m[3] ?? '';
    if (rest === '' && method === 'GET') return send(200, repoJson(repo, url));
    if (rest === '/check-runs' && method === 'POST') {
      const b = await readBody(req);
      if (typeof b.name !== 'string' || typeof b.head_sha !== 'string')
        return send(422, { message: 'Invalid request: name and head_sha are required' });
      const run: CheckRun = {
        id: nextId++,
        repo: full,
        head_sha: b.head_sha,
        name: b.name,
        status: typeof b.status === 'string' ? b.status : 'queued',
        conclusion: typeof b.conclusion === 'string' ? b.conclusion : null,
        details_url: typeof b.details_url === 'string' ? b.details_url : undefined,
        external_id: typeof b.external_id === 'string' ? b.external_id : undefined,
        output: b.output as CheckRun['output'],
        history: [],
      };
      if (run.conclusion) run.status = 'completed';
      run.history.push({ status: run.status, conclusion: run.conclusion, summary: run.output?.summary });
      checkRuns.push(run);
      return send(201, run);
    }
    const upd = /^\/check-runs\/(\d+)$/.exec(rest);
    if (upd && method === 'PATCH') {
      const run = checkRuns.find((r) => r.id === Number(upd[1]) && r.repo === full);
      if (!run) return send(404, { message: 'Not Found' });
      const b = await readBody(req);
      if (typeof b.status === 'string') run.status = b.status;
      if (typeof b.conclusion === 'string') {
        run.conclusion = b.conclusion;
        run.status = 'completed';
      } else if (b.status && b.status !== 'completed') run.conclusion = null;
      if (typeof b.details_url === 'string') run.details_url = b.details_url;
      if (b.output) run.output = b.output;
      run.history.push({ status: run.status, conclusion: run.conclusion, summary: run.output?.summary });
      return send(200, run);
    }
    const list = /^\/commits\/([^/]+)\/check-runs$/.exec(rest);
    if (list && method === 'GET') {
      const name = u.searchParams.get('check_name');
      const runs = checkRuns.filter((r) => r.repo === full && r.head_sha === list[1] && (!name || r.name === name));
      return send(200, { total_count: runs.length, check_runs: runs });
    }
    const st = /^\/statuses\/([0-9a-f]{40})$/.exec(rest);
    if (st && method === 'POST') {
      const b = await readBody(req);
      if (!['error', 'failure', 'pending', 'success'].includes(String(b.state))) return send(422, { message: 'Validation Failed: state' });
      const s: CommitStatus = {
        id: nextId++,
        repo: full,
        sha: st[1]!,
        state: String(b.state),
        context: typeof b.context === 'string' ? b.context : 'default',
        description: typeof b.description === 'string' ? b.description : undefined,
        target_url: typeof b.target_url === 'string' ? b.target_url : undefined,
      };
      statuses.push(s);
      return send(201, s);
    }
    return send(404, { message: 'Not Found' });
  }

  const server: Server = createServer((req, res) => {
    const entry = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0 };
    requests.push(entry);
    handle(req, res)
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
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

  return {
    url,
    checkRuns,
    statuses,
    requests,
    tokenValid: (t) => liveToken(t) !== undefined,
    tokenInstallation: (t) => liveToken(t)?.installationId,
    failNext(n, status = 502) {
      failures = { n, status };
    },
    secondaryLimit(n, retryAfterSeconds) {
      secondary = { n, retryAfter: retryAfterSeconds };
    },
    setRemaining(n, resetInSeconds = 3600) {
      remaining = n;
      resetAt = Math.floor(now() / 1000) + resetInSeconds;
    },
    renameRepo(id, owner, name) {
      for (const i of installations) for (const r of i.repositories) if (r.id === id) Object.assign(r, { owner, name });
    },
    addRepo(installationId, repo) {
      installations.find((i) => i.id === installationId)?.repositories.push(repo);
    },
    removeRepo(id) {
      for (const i of installations) i.repositories = i.repositories.filter((r) => r.id !== id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
