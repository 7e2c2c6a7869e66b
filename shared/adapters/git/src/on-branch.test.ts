/**
 * The branch proof and the credential scope, played as the attacker: a webhook (or an Application) may name any
 * commit, branch and URL; the remote's own refs decide whether a commit is on the branch, and the token goes only to
 * the configured URL prefixes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestRepo } from '@gitops-gate/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitMirror, credentialPrefix, isSafeBranchName } from './index.js';

const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

describe('proveOnBranch (real git, GitHub-like remote that serves any object by SHA)', () => {
  const repo = createTestRepo();
  // GitHub serves any object in the repository's store by SHA (pull requests, forks' objects): so does this remote.
  execFileSync('git', ['config', 'uploadpack.allowAnySHA1InWant', 'true'], { cwd: repo.bareDir, env: GIT_ENV });
  const base = repo.commit('base');
  repo.push('main');
  repo.git('checkout', '--quiet', '-b', 'feature');
  const feature = repo.commit('feature only');
  repo.push('feature');
  repo.git('checkout', '--quiet', '-b', 'pr');
  const prOnly = repo.commit('pull request only');
  repo.git('push', '--quiet', 'origin', 'HEAD:refs/pull/1/head');
  repo.git('checkout', '--quiet', '-b', 'fork');
  const forkOnly = repo.commit('fork only');
  // A fork's object in the parent's store with no ref of the parent naming it (GitHub shares object stores).
  repo.git('push', '--quiet', 'origin', 'HEAD:refs/forks/tmp');
  execFileSync('git', ['update-ref', '-d', 'refs/forks/tmp'], { cwd: repo.bareDir, env: GIT_ENV });
  repo.git('checkout', '--quiet', 'main');
  const url = 'https://github.com/org/app.git';
  const mirror = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-onbranch-')), urlRewrites: { [url]: repo.url } });

  it('the head of main is on main', async () => {
    expect(await mirror.proveOnBranch(url, base, 'main')).toEqual({ head: base, onBranch: true });
  });
  it('a feature-only commit claimed as main is not on main (and names the real head)', async () => {
    // The commit is fetchable (the verifier can verify its signature) ...
    expect((await mirror.readCommit(url, feature)).toString()).toContain('feature only');
    // ... but main does not contain it.
    expect(await mirror.proveOnBranch(url, feature, 'main')).toEqual({ head: base, onBranch: false });
    expect(await mirror.proveOnBranch(url, feature, 'feature')).toEqual({ head: feature, onBranch: true });
  });
  it('a commit reachable only from refs/pull/1/head is on no branch', async () => {
    expect((await mirror.readCommit(url, prOnly)).toString()).toContain('pull request only');
    expect(await mirror.proveOnBranch(url, prOnly, 'main')).toEqual({ head: base, onBranch: false });
  });
  it('a fork-only object in the remote store is not on main', async () => {
    expect((await mirror.readCommit(url, forkOnly)).toString()).toContain('fork only');
    expect(await mirror.proveOnBranch(url, forkOnly, 'main')).toEqual({ head: base, onBranch: false });
  });
  it('a branch that moved on after the delivery still contains the commit; a rewritten one does not', async () => {
    const next = repo.commit('main moves on');
    repo.push('main');
    expect(await mirror.proveOnBranch(url, base, 'main')).toEqual({ head: next, onBranch: true });
    repo.git('reset', '--quiet', '--hard', base);
    const rewritten = repo.commit('rewritten');
    repo.push('main', true);
    // `next` was on main when first seen; the remote decides now, and the mirror forgets the old head.
    expect(await mirror.proveOnBranch(url, next, 'main')).toEqual({ head: rewritten, onBranch: false });
  });
  it('a deleted branch proves nothing', async () => {
    repo.git('push', '--quiet', 'origin', ':refs/heads/feature');
    expect(await mirror.proveOnBranch(url, feature, 'feature')).toEqual({ head: null, onBranch: false });
  });
  it('a branch name that would widen or redirect the refspec is refused before git runs', async () => {
    for (const b of ['*', 'main:refs/heads/x', '--upload-pack=evil', 'a..b', 'x@{1}', '.hidden', 'x.lock', 'a b', 'a\\b', '']) {
      expect(isSafeBranchName(b), b).toBe(false);
      await expect(mirror.proveOnBranch(url, base, b)).rejects.toMatchObject({ code: 'GIT_BAD_BRANCH' });
    }
    for (const b of ['main', 'release/1.2', 'feature/x-y_z']) expect(isSafeBranchName(b), b).toBe(true);
  });
});

describe('credential scope (a local HTTP server that records Authorization headers)', () => {
  let server: Server;
  let port = 0;
  const seen: { path: string; auth: string | undefined }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization });
      // A redirect to another path of this server: a followed redirect would show up as a second request.
      if ((req.url ?? '').startsWith('/redirect/')) {
        res.writeHead(302, { location: `http://127.0.0.1:${port}/elsewhere/info/refs?service=git-upload-pack` }).end();
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const sha = 'a'.repeat(40);
  const token = 'ghp_secret_token_value';

  it('a host outside the credential list never receives the token (default: github.com only)', async () => {
    const m = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-cred-')), httpToken: token });
    await m.readCommit(`http://127.0.0.1:${port}/attacker/repo.git`, sha).catch(() => undefined);
    await m.listHeads(`http://127.0.0.1:${port}/attacker/repo.git`).catch(() => undefined);
    const hits = seen.filter((s) => s.path.startsWith('/attacker/'));
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.auth === undefined)).toBe(true);
  });
  it('a configured prefix receives it, a sibling path on the same host does not', async () => {
    const m = createGitMirror({
      cacheDir: mkdtempSync(join(tmpdir(), 'gg-cred-')),
      httpToken: token,
      credentialPrefixes: [`http://127.0.0.1:${port}/trusted/`],
    });
    await m.listHeads(`http://127.0.0.1:${port}/trusted/repo.git`).catch(() => undefined);
    await m.listHeads(`http://127.0.0.1:${port}/untrusted/repo.git`).catch(() => undefined);
    const trusted = seen.filter((s) => s.path.startsWith('/trusted/'));
    const untrusted = seen.filter((s) => s.path.startsWith('/untrusted/'));
    expect(trusted.length).toBeGreaterThan(0);
    expect(trusted.every((h) => h.auth === `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`)).toBe(true);
    expect(untrusted.length).toBeGreaterThan(0);
    expect(untrusted.every((h) => h.auth === undefined)).toBe(true);
  });
  it('a rewrite of a credentialed URL to another host sends no token there', async () => {
    const m = createGitMirror({
      cacheDir: mkdtempSync(join(tmpdir(), 'gg-cred-')),
      httpToken: token,
      urlRewrites: { 'https://github.com/': `http://127.0.0.1:${port}/rewritten/` },
    });
    await m.readCommit('https://github.com/org/app.git', sha).catch(() => undefined);
    const hits = seen.filter((s) => s.path.startsWith('/rewritten/'));
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.auth === undefined)).toBe(true);
  });
  it('a credentialed server cannot redirect the token elsewhere: redirects are not followed', async () => {
    const m = createGitMirror({
      cacheDir: mkdtempSync(join(tmpdir(), 'gg-cred-')),
      httpToken: token,
      credentialPrefixes: [`http://127.0.0.1:${port}/redirect/`],
    });
    await m.listHeads(`http://127.0.0.1:${port}/redirect/repo.git`).catch(() => undefined);
    expect(seen.some((s) => s.path.startsWith('/redirect/'))).toBe(true);
    expect(seen.filter((s) => s.path.startsWith('/elsewhere/'))).toEqual([]);
  });
  it('credential entries: a host means https://host/, a URL is a prefix', () => {
    expect(credentialPrefix('github.com')).toBe('https://github.com/');
    expect(credentialPrefix('git.example.com:8443')).toBe('https://git.example.com:8443/');
    expect(credentialPrefix('http://127.0.0.1:1/org')).toBe('http://127.0.0.1:1/org/');
  });
});
