/**
 * The App installation token on git fetches: real `git http-backend` behind the emulator's git host, which (like
 * GitHub for a private repository) serves only requests with a live installation token as Basic
 * `x-access-token:<token>`. The token goes only to the configured host.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitMirror } from '@gitops-gate/git';
import { basicToken, startGitHost, startGitHubEmulator, type GitHost, type GitHubEmulator } from '@gitops-gate/github-emulator';
import { createTestRepo, type TestRepo } from '@gitops-gate/testing';
import { createGitHubClient, type GitHubClient } from './client.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
let root: string;
let repo: TestRepo;
let sha: string;
let gh: GitHubEmulator;
let host: GitHost;
let other: GitHost;
let client: GitHubClient;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gg-githost-'));
  repo = createTestRepo(join(root, 'src'));
  sha = repo.commit('first');
  repo.push();
  mkdirSync(join(root, 'srv', 'org'), { recursive: true });
  execFileSync('git', ['clone', '--quiet', '--bare', repo.bareDir, join(root, 'srv', 'org', 'app.git')]);
  gh = await startGitHubEmulator({
    appId: 3,
    appPublicKey: publicKey,
    installations: [{ id: 30, account: 'org', repositories: [{ id: 1, owner: 'org', name: 'app' }] }],
    tokenTtlSeconds: 2,
  });
  host = await startGitHost({ projectRoot: join(root, 'srv'), tokenValid: gh.tokenValid });
  // Another (public) git host: it must never see the token.
  other = await startGitHost({ projectRoot: join(root, 'srv'), tokenValid: () => false, anonymous: true });
  client = createGitHubClient({
    apiUrl: gh.url,
    app: { appId: 3, privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), installationId: 30 },
    refreshBeforeMs: 1_000,
  });
  await client.start();
});
afterAll(async () => {
  await host.close();
  await other.close();
  await gh.close();
  rmSync(root, { recursive: true, force: true });
});

const mirror = (httpToken: string | (() => string | undefined) | undefined) =>
  createGitMirror({ cacheDir: mkdtempSync(join(root, 'cache-')), httpToken, credentialPrefixes: [`${host.url}/`], timeoutMs: 20_000 });

describe('git fetches with the App installation token', () => {
  it('fetches with the live installation token, sent as Basic x-access-token:<token>', async () => {
    await mirror(() => client.currentGitToken()).ensureCommit(`${host.url}/org/app.git`, sha);
    const served = host.log.filter((l) => l.status === 200);
    expect(served.length).toBeGreaterThan(0);
    expect(served[0]!.auth).toMatch(/^Basic /);
    expect(Buffer.from(served[0]!.auth!.slice(6), 'base64').toString()).toMatch(/^x-access-token:ghs_/);
    expect(gh.tokenValid(basicToken(served[0]!.auth)!)).toBe(true);
  });

  it('a wrong or expired token, or none, is refused by the host (401): the fetch fails', async () => {
    await expect(mirror('ghs_not-a-token').ensureCommit(`${host.url}/org/app.git`, sha)).rejects.toThrow();
    const stale = await client.token();
    await new Promise((r) => setTimeout(r, 2_100));
    expect(gh.tokenValid(stale)).toBe(false);
    await expect(mirror(stale).ensureCommit(`${host.url}/org/app.git`, sha)).rejects.toThrow();
    await expect(mirror(undefined).ensureCommit(`${host.url}/org/app.git`, sha)).rejects.toThrow();
    expect(host.log.some((l) => l.status === 401)).toBe(true);
  });

  it('the client renews the token before it expires; fetches go on with the new one', async () => {
    client.currentGitToken(); // kicks a renewal (less than refreshBeforeMs left, or expired)
    await new Promise((r) => setTimeout(r, 300));
    const token = client.currentGitToken();
    expect(token && gh.tokenValid(token)).toBe(true);
    await mirror(() => client.currentGitToken()).ensureCommit(`${host.url}/org/app.git`, sha);
  });

  it('attacker: a fetch from another host never carries the token', async () => {
    await mirror(() => client.currentGitToken()).ensureCommit(`${other.url}/org/app.git`, sha);
    expect(other.log.length).toBeGreaterThan(0);
    expect(other.log.every((l) => l.auth === undefined)).toBe(true);
  });
});
