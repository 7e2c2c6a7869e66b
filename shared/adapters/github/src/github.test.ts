/**
 * The GitHub App client, repository identity and check-run reporting against the GitHub API emulator, with the real
 * Octokit clients (`@octokit/auth-app`, throttling, retry) and a real redis-server.
 */
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGitHubEmulator, checkAppJwt, type GitHubEmulator } from '@gitops-gate/github-emulator';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createGitHubClient, type GitHubClient } from './client.js';
import { createIdentityCheck, deliveryIdentity } from './identity.js';
import {
  checkRunFor,
  createReportProcessor,
  createReportQueue,
  createReportWorker,
  reportJobFromRecord,
  type ReportJob,
} from './report.js';

const APP_ID = 4242;
const INSTALLATION = 77;
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const SHA = 'a'.repeat(40);

let redis: TestRedis;
let conn: Redis;
let gh: GitHubEmulator;
let prefix = 't0';
let n = 0;

const fast = { writeMinTimeMs: 0, retryAfterBaseValue: 10 };
const appClient = (extra: Partial<Parameters<typeof createGitHubClient>[0]> = {}): GitHubClient =>
  createGitHubClient({ apiUrl: gh.url, app: { appId: APP_ID, privateKey: keyPem }, ...fast, ...extra });

beforeAll(async () => {
  redis = await startTestRedis();
  conn = new Redis(redis.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  conn.disconnect();
  await redis.close();
});
beforeEach(async () => {
  prefix = `t${++n}`;
  gh = await startGitHubEmulator({
    appId: APP_ID,
    appPublicKey: publicKey,
    installations: [
      {
        id: INSTALLATION,
        account: 'org',
        repositories: [
          { id: 101, owner: 'org', name: 'app' },
          { id: 102, owner: 'org', name: 'other' },
        ],
      },
      { id: 88, account: 'evil', repositories: [{ id: 201, owner: 'evil', name: 'app' }] },
    ],
  });
});
afterEach(async () => {
  await gh.close();
});

describe('App JWT rules (emulator)', () => {
  const sign = (payload: object, key = privateKey, alg = 'RS256') => {
    const h = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
    const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${h}.${p}.${nodeSign('RSA-SHA256', Buffer.from(`${h}.${p}`), key).toString('base64url')}`;
  };
  const now = 1_800_000_000;
  it('accepts a JWT signed with the App key; refuses another key, expired, too long, future iat, wrong issuer, alg none', () => {
    expect(checkAppJwt(sign({ iss: APP_ID, iat: now - 30, exp: now + 540 }), APP_ID, publicKey, now)).toBeUndefined();
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(checkAppJwt(sign({ iss: APP_ID, iat: now - 30, exp: now + 540 }, other), APP_ID, publicKey, now)).toMatch(
      /could not be decoded/,
    );
    expect(checkAppJwt(sign({ iss: APP_ID, iat: now - 700, exp: now - 100 }), APP_ID, publicKey, now)).toMatch(/exp/);
    expect(checkAppJwt(sign({ iss: APP_ID, iat: now - 30, exp: now + 900 }), APP_ID, publicKey, now)).toMatch(/too far/);
    expect(checkAppJwt(sign({ iss: APP_ID, iat: now + 300, exp: now + 500 }), APP_ID, publicKey, now)).toMatch(/iat/);
    expect(checkAppJwt(sign({ iss: 1, iat: now - 30, exp: now + 540 }), APP_ID, publicKey, now)).toMatch(/Issuer/);
    expect(checkAppJwt(sign({ iss: APP_ID, iat: now - 30, exp: now + 540 }, privateKey, 'none'), APP_ID, publicKey, now)).toMatch(/RS256/);
  });
});

describe('App authentication (real @octokit/auth-app)', () => {
  it('gets an installation token with a JWT, caches it, and renews it shortly before expiry', async () => {
    let clock = Date.now();
    const client = appClient({ now: () => clock, refreshBeforeMs: 5 * 60_000 });
    const t1 = await client.token(INSTALLATION);
    expect(t1).toMatch(/^ghs_/);
    expect(gh.tokenInstallation(t1)).toBe(INSTALLATION);
    expect(await client.token(INSTALLATION)).toBe(t1);
    expect(gh.requests.filter((r) => r.path.endsWith('/access_tokens'))).toHaveLength(1);
    clock += 56 * 60_000; // 4 minutes left of the hour: renewed
    const t2 = await client.token(INSTALLATION);
    expect(t2).not.toBe(t1);
    expect(gh.requests.filter((r) => r.path.endsWith('/access_tokens'))).toHaveLength(2);
  });

  it('a key that is not the App key gets no token (GITHUB_AUTH_FAILED)', async () => {
    const wrong = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const client = createGitHubClient({ apiUrl: gh.url, app: { appId: APP_ID, privateKey: wrong }, ...fast });
    await expect(client.token(INSTALLATION)).rejects.toMatchObject({ code: 'GITHUB_AUTH_FAILED' });
    expect(gh.requests.at(-1)?.status).toBe(401);
  });

  it('an expired installation token is refused by the API (401)', async () => {
    const e = await startGitHubEmulator({
      appId: APP_ID,
      appPublicKey: publicKey,
      installations: [{ id: 1, account: 'o', repositories: [{ id: 5, owner: 'o', name: 'r' }] }],
      tokenTtlSeconds: 1,
    });
    try {
      const client = createGitHubClient({
        apiUrl: e.url,
        app: { appId: APP_ID, privateKey: keyPem, installationId: 1 },
        ...fast,
        refreshBeforeMs: 0,
      });
      const t = await client.token();
      await new Promise((r) => setTimeout(r, 1_100));
      const res = await fetch(`${e.url}/repos/o/r`, { headers: { authorization: `token ${t}` } });
      expect(res.status).toBe(401);
      // The client renews by itself.
      const ok = await client.octokit().request('GET /repos/{owner}/{repo}', { owner: 'o', repo: 'r' });
      expect((ok.data as { id: number }).id).toBe(5);
    } finally {
      await e.close();
    }
  });

  it('answers carry x-ratelimit-*; a secondary limit (403 retry-after) and 5xx are retried by the plugins', async () => {
    const client = appClient();
    const limits: string[] = [];
    const c2 = appClient({ onLimit: (kind) => limits.push(kind) });
    const res = await client.octokit(INSTALLATION).request('GET /repos/{owner}/{repo}', { owner: 'org', repo: 'app' });
    expect(res.headers['x-ratelimit-limit']).toBe('5000');
    expect(Number(res.headers['x-ratelimit-remaining'])).toBeLessThan(5000);
    gh.secondaryLimit(2, 1);
    const created = await c2
      .octokit(INSTALLATION)
      .request('POST /repos/{owner}/{repo}/check-runs', { owner: 'org', repo: 'app', name: 'x', head_sha: SHA, status: 'in_progress' });
    expect(created.status).toBe(201);
    expect(limits).toEqual(['secondary', 'secondary']);
    gh.failNext(2, 502);
    const again = await client.octokit(INSTALLATION).request('GET /repos/{owner}/{repo}', { owner: 'org', repo: 'app' });
    expect(again.status).toBe(200);
    // Primary limit: the plugin waits until x-ratelimit-reset (+1 s), in real seconds. The client has its installation
    // token before the limit is set, so the limited request arrives well within the reset window even on a busy machine.
    const limited = appClient({ retryAfterBaseValue: 1000, onLimit: (kind) => limits.push(kind) }).octokit(INSTALLATION);
    await limited.request('GET /repos/{owner}/{repo}', { owner: 'org', repo: 'app' });
    gh.setRemaining(0, 2);
    const afterReset = await limited.request('GET /repos/{owner}/{repo}', { owner: 'org', repo: 'app' });
    expect(afterReset.status).toBe(200);
    expect(limits).toContain('primary');
  });

  it('a personal token client works without an App', async () => {
    const client = createGitHubClient({ apiUrl: gh.url, token: 'ghp_x', ...fast });
    expect(client.mode).toBe('token');
    expect(client.currentGitToken()).toBe('ghp_x');
  });
});

describe('repository identity', () => {
  const check = (client = appClient()) => createIdentityCheck({ client, redis: conn, prefix });
  const url = 'https://github.com/org/app';

  it('a delivery for the followed repository in its installation passes', async () => {
    expect(await check().check(url, { installationId: INSTALLATION, repositoryId: 101 })).toEqual({ ok: true });
    expect(deliveryIdentity({ installation: { id: 77 }, repository: { id: 101 } })).toEqual({ installationId: 77, repositoryId: 101 });
  });

  it('attacker: a delivery naming the followed URL but another repository id (another repo of the installation) is refused', async () => {
    const v = await check().check(url, { installationId: INSTALLATION, repositoryId: 102 });
    expect(v).toMatchObject({ ok: false, status: 403, code: 'REPOSITORY_ID_MISMATCH' });
  });

  it('attacker: a repository of another installation, claimed under this installation, is refused', async () => {
    const v = await check().check(url, { installationId: INSTALLATION, repositoryId: 201 });
    expect(v).toMatchObject({ ok: false, code: 'NOT_IN_INSTALLATION' });
  });

  it('attacker: another installation (another org that installed the App) cannot deliver for the followed repository', async () => {
    const v = await check().check(url, { installationId: 88, repositoryId: 201 });
    expect(v).toMatchObject({ ok: false, code: 'REPOSITORY_ID_MISMATCH' });
    const unknown = await check().check(url, { installationId: 999, repositoryId: 101 });
    expect(unknown).toMatchObject({ ok: false, status: 403, code: 'NOT_IN_INSTALLATION' });
  });

  it('attacker: the followed repository renamed away and a new one created under its name keeps being refused', async () => {
    expect((await check().check(url, { installationId: INSTALLATION, repositoryId: 101 })).ok).toBe(true);
    gh.renameRepo(101, 'org', 'app-renamed');
    gh.addRepo(INSTALLATION, { id: 555, owner: 'org', name: 'app' });
    // A fresh process (a restart, another replica) still compares against the first answer, kept in Redis.
    const v = await check().check(url, { installationId: INSTALLATION, repositoryId: 555 });
    expect(v).toMatchObject({ ok: false, code: 'REPOSITORY_ID_MISMATCH' });
    expect((await check().check(url, { installationId: INSTALLATION, repositoryId: 101 })).ok).toBe(true);
  });

  it('attacker: deliveries with made-up repository or installation ids cost no GitHub API call each', async () => {
    const c = check();
    expect((await c.check(url, { installationId: INSTALLATION, repositoryId: 101 })).ok).toBe(true);
    const before = gh.requests.length;
    for (let i = 0; i < 20; i++) {
      expect((await c.check(url, { installationId: INSTALLATION, repositoryId: 90_000 + i })).ok).toBe(false);
      expect((await c.check(url, { installationId: 5_000, repositoryId: 101 })).ok).toBe(false);
    }
    // At most one forced re-list of the installation and one token request for the unknown installation.
    expect(gh.requests.length - before).toBeLessThanOrEqual(2);
  });

  it('missing ids are refused; GitHub down is a 503 (nothing queued, nothing decided)', async () => {
    expect(await check().check(url, { installationId: INSTALLATION })).toMatchObject({ ok: false, code: 'NO_REPOSITORY_ID' });
    expect(await check().check(url, { repositoryId: 101 })).toMatchObject({ ok: false, code: 'NO_INSTALLATION' });
    gh.failNext(100, 503);
    expect(
      await check(appClient({ retryAfterBaseValue: 1 })).check(url, { installationId: INSTALLATION, repositoryId: 101 }),
    ).toMatchObject({ ok: false, status: 503 });
  });

  it('with a personal token only the repository id is compared', async () => {
    const client = createGitHubClient({ apiUrl: gh.url, token: 'ghp_unknown', ...fast });
    // The emulator knows only installation tokens: the PAT is refused → unavailable (fail closed, 503).
    expect((await createIdentityCheck({ client, redis: conn, prefix }).check(url, { repositoryId: 101 })).ok).toBe(false);
  });
});

const job = (i: number, action: string, extra: Partial<ReportJob> = {}): ReportJob => ({
  v: 1,
  decisionId: `d-${prefix}-${i}`,
  time: new Date(1_800_000_000_000 + i).toISOString(),
  repoUrl: 'https://github.com/org/app',
  sha: SHA,
  app: 'argocd/web',
  action,
  reason: `reason ${i}`,
  ...extra,
});

describe('check runs', () => {
  it('maps decisions: pin → success, refuse-* → failure with code and signer, skip-older → neutral, waits → in_progress', () => {
    expect(checkRunFor(job(1, 'pin', { signer: 'dev@example.com' }), 'https://gate.example/ui/')).toMatchObject({
      name: 'gitops-gate / argocd/web',
      status: 'completed',
      conclusion: 'success',
      detailsUrl: 'https://gate.example/ui/app/argocd/web#d-' + prefix + '-1',
    });
    const refused = checkRunFor(job(2, 'refuse-unverified', { code: 'UNSIGNED', signer: 'mallory@example.com' }));
    expect(refused).toMatchObject({ conclusion: 'failure', title: 'Refused: UNSIGNED' });
    expect(refused?.summary).toContain('`mallory@example.com`');
    expect(checkRunFor(job(3, 'skip-older'))).toMatchObject({ conclusion: 'neutral' });
    expect(checkRunFor(job(4, 'wait-images'))).toMatchObject({ status: 'in_progress' });
    expect(checkRunFor(job(5, 'deferred-transient'))).toMatchObject({ status: 'in_progress' });
    expect(checkRunFor(job(6, 'error-conflict'))).toBeUndefined();
    expect(
      reportJobFromRecord({
        id: 'x',
        time: 't',
        repo: 'https://github.com/org/app',
        sha: SHA,
        app: 'a/b',
        action: 'pin',
        reason: 'r',
        verdict: { code: '', method: 'ssh' },
      }),
    ).toMatchObject({ method: 'ssh', code: undefined });
  });

  it('attacker: a signer, issuer or reason written as Markdown/HTML shows as text on the commit page', () => {
    const evil = checkRunFor(
      job(7, 'refuse-unverified', {
        code: 'UNSIGNED`](https://evil.example)',
        signer: '![x](https://evil.example/pixel.png) <img src=x onerror=alert(1)>',
        issuer: '[approved](https://evil.example)\n\n# Deployed',
        reason: '**pinned** @org/admins https://evil.example',
      }),
    )!;
    // Code spans are inert; outside them, no Markdown image/link/heading/HTML/mention/autolink survives unescaped.
    const s = evil.summary.replace(/`[^`\n]*`/g, '');
    expect(s).not.toMatch(/(^|[^\\])!\[/);
    expect(s).not.toMatch(/(^|[^\\])\]\(/);
    expect(s).not.toMatch(/(^|[^\\])</);
    expect(s).not.toMatch(/\n#/);
    expect(s).not.toMatch(/(^|[^\\])@org/);
    expect(s).not.toMatch(/https:\/\//);
    // The code span holding the reason code cannot be closed early.
    expect(evil.summary).toContain('``UNSIGNED`](https://evil.example)``');
    expect(evil.summary.split('\n')).toHaveLength(6);
  });

  it('one check run per (commit, Application): in_progress then success updates it; redeliveries and two replicas create it once', async () => {
    const p1 = createReportProcessor({ client: appClient(), redis: conn, prefix, uiUrl: 'http://127.0.0.1:8081/ui' });
    const p2 = createReportProcessor({ client: appClient(), redis: conn, prefix });
    await p1(job(1, 'wait-images'));
    // Two replicas at once: one holds the check run, the other is told to retry (BullMQ backoff) — never a second run.
    const results = await Promise.allSettled([p1(job(2, 'pin')), p2(job(2, 'pin'))]);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    await p2(job(2, 'pin'));
    expect(gh.checkRuns).toHaveLength(1);
    const run = gh.checkRuns[0]!;
    expect(run).toMatchObject({ name: 'gitops-gate / argocd/web', status: 'completed', conclusion: 'success' });
    expect(run.details_url).toBe(`http://127.0.0.1:8081/ui/app/argocd/web#d-${prefix}-2`);
    expect(run.history[0]).toMatchObject({ status: 'in_progress' });
    // An older decision arriving late does not overwrite the newer one.
    expect(await p1(job(1, 'wait-images'))).toBe('stale');
    expect(gh.checkRuns[0]!.conclusion).toBe('success');
  });

  it('a replica that created the run but died before storing its id: the next finds it, no duplicate', async () => {
    const client = appClient();
    await client.octokit(INSTALLATION).request('POST /repos/{owner}/{repo}/check-runs', {
      owner: 'org',
      repo: 'app',
      name: 'gitops-gate / argocd/web',
      head_sha: SHA,
      status: 'in_progress',
    });
    await createReportProcessor({ client, redis: conn, prefix })(job(3, 'refuse-unverified', { code: 'UNSIGNED' }));
    expect(gh.checkRuns).toHaveLength(1);
    expect(gh.checkRuns[0]).toMatchObject({ conclusion: 'failure' });
    expect(gh.checkRuns[0]!.output?.summary).toContain('UNSIGNED');
  });

  it('a personal token reports commit statuses', async () => {
    // The emulator accepts installation tokens only: hand the "personal" client one.
    const token = await appClient().token(INSTALLATION);
    const client = createGitHubClient({ apiUrl: gh.url, token, ...fast });
    await createReportProcessor({ client, redis: conn, prefix, uiUrl: 'https://gate.example/ui' })(
      job(4, 'refuse-unverified', { code: 'UNSIGNED' }),
    );
    expect(gh.statuses).toEqual([
      expect.objectContaining({
        state: 'failure',
        context: 'gitops-gate / argocd/web',
        target_url: `https://gate.example/ui/app/argocd/web#d-${prefix}-4`,
      }),
    ]);
    expect(gh.checkRuns).toHaveLength(0);
  });

  it('50 decisions under a secondary rate limit: all reported, in order, none twice (queue + worker)', async () => {
    const client = appClient({ retryAfterBaseValue: 20 });
    const queue = createReportQueue(conn, prefix);
    gh.secondaryLimit(8, 1);
    const shas = Array.from({ length: 50 }, (_, i) => i.toString(16).padStart(2, '0').repeat(20));
    for (let i = 0; i < 50; i++) await queue.enqueue(job(i, i % 2 ? 'pin' : 'refuse-unverified', { sha: shas[i]!, code: 'UNSIGNED' }));
    // A redelivered decision (same id) is not queued twice.
    await queue.enqueue(job(7, 'pin', { sha: shas[7]! }));
    const worker = createReportWorker({ client, redis: conn, prefix, connection: new Redis(redis.url, { maxRetriesPerRequest: null }) });
    try {
      const deadline = Date.now() + 60_000;
      while (gh.checkRuns.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await worker.close();
      await queue.close();
    }
    expect(gh.checkRuns.map((r) => r.head_sha)).toEqual(shas);
    expect(gh.checkRuns.every((r) => r.history.length === 1)).toBe(true);
    expect(gh.requests.filter((r) => r.status === 403).length).toBe(8);
  }, 90_000);
});
