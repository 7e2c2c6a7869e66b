import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditTrail } from '@gitops-gate/gate-store';
import { createRedisConnection } from '@gitops-gate/queue';
import { createTestRepo, generateSshKey, startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { runCli } from './test-cli.js';

const FIX = new URL('../../../../shared/fixtures/git-commits/', import.meta.url).pathname;
const CONF = new URL('../../../../shared/fixtures/sigstore-conformance/bundle-verify/', import.meta.url).pathname;
const REPO_ROOT = new URL('../../../', import.meta.url).pathname;
const GITSIGN = join(FIX, 'gitsign-offline/200ca8647599a02ce268818bb428eeb686e8d99f.commit');
const SSH = join(FIX, 'ssh/1473882a7cce225d15f1a2226399a0802251b756.commit');
const PGP = join(FIX, 'pgp/0428dc0d9141bb201c788a9c04a9eeae1e7d0eac.commit');
const UNSIGNED = join(FIX, 'unsigned/037fe43ba90fbcfca32b020588dacacc901b0df3.commit');

const run = (...argv: string[]) => runCli(argv, { REDIS_URL: redisUrl });
let redisUrl = 'redis://127.0.0.1:1';

describe('gitops-gate verify-commit', () => {
  it('gitsign: exact identity and issuer → exit 0', async () => {
    const r = await run(
      'verify-commit',
      GITSIGN,
      '--certificate-identity',
      'billy@chainguard.dev',
      '--certificate-oidc-issuer',
      'https://accounts.google.com',
    );
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/verified: 200ca864.* billy@chainguard.dev .*via gitsign/);
  });
  it('gitsign: a prefix of the identity is not a match; an explicit anchored regexp is', async () => {
    expect(
      (
        await run(
          'verify-commit',
          GITSIGN,
          '--certificate-identity',
          'billy@chainguard',
          '--certificate-oidc-issuer',
          'https://accounts.google.com',
        )
      ).code,
    ).toBe(1);
    expect(
      (
        await run(
          'verify-commit',
          GITSIGN,
          '--certificate-identity-regexp',
          'billy@',
          '--certificate-oidc-issuer',
          'https://accounts.google.com',
        )
      ).code,
    ).toBe(1);
    expect(
      (
        await run(
          'verify-commit',
          GITSIGN,
          '--certificate-identity-regexp',
          '.*@chainguard\\.dev',
          '--certificate-oidc-issuer',
          'https://accounts.google.com',
        )
      ).code,
    ).toBe(0);
  });
  it('gitsign: wrong issuer → exit 1 with one line', async () => {
    const r = await run(
      'verify-commit',
      GITSIGN,
      '--certificate-identity',
      'billy@chainguard.dev',
      '--certificate-oidc-issuer',
      'https://github.com/login/oauth',
    );
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
  it('SSH with allowed signers, GPG with a key file, --json', async () => {
    expect((await run('verify-commit', SSH, '--allowed-signers', join(FIX, 'ssh/allowed_signers'))).code).toBe(0);
    const r = await run('verify-commit', PGP, '--gpg-key', join(FIX, 'pgp/github-web-flow-2017.asc'), '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({
      ok: true,
      method: 'gpg',
      signer: { keyFingerprint: '5de3e0509c47ea3cf04a42d34aee18f83afdeb23' },
    });
  });
  it('an unsigned commit → exit 1, UNSIGNED', async () => {
    const r = await run('verify-commit', UNSIGNED, '--allowed-signers', join(FIX, 'ssh/allowed_signers'));
    expect(r).toMatchObject({ code: 1 });
    expect(r.err).toMatch(/^not verified: UNSIGNED/);
  });
  it('a commit file whose name is a sha must hash to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    const renamed = join(dir, `${'a'.repeat(40)}.commit`);
    writeFileSync(renamed, readFileSync(SSH));
    const r = await run('verify-commit', renamed, '--allowed-signers', join(FIX, 'ssh/allowed_signers'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/COMMIT_ID_MISMATCH/);
  });
  it('a sha in a repository (--repo), signed by real git', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-repo-'));
    const key = generateSshKey(dir, 'k');
    writeFileSync(join(dir, 'allowed'), `${key.allowedSignersLine('dev@example.com')}\n`);
    const repo = createTestRepo(join(dir, 'r'));
    const sha = repo.commit('signed', { signWith: key });
    expect((await run('verify-commit', sha.slice(0, 10), '--repo', repo.workDir, '--allowed-signers', join(dir, 'allowed'))).code).toBe(0);
    expect((await run('verify-commit', 'HEAD', '--repo', repo.workDir, '--allowed-signers', join(dir, 'allowed'))).code).toBe(0);
    const r = await run('verify-commit', 'nope', '--repo', repo.workDir, '--allowed-signers', join(dir, 'allowed'));
    expect(r).toMatchObject({ code: 2 });
    expect(r.err).toMatch(/not a commit/);
  });
  it('a policy file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-pol-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      `apiVersion: gitops-gate.io/v1alpha1
kind: GatePolicy
metadata: {name: gitsign-team}
spec:
  repository: https://github.com/sigstore/gitsign
  branches: [main]
  commits:
    gitsign: [{identity: billy@chainguard.dev, issuer: https://accounts.google.com}]
`,
    );
    expect((await run('verify-commit', GITSIGN, '--policy', policy)).code).toBe(0);
    expect((await run('verify-commit', SSH, '--policy', policy)).code).toBe(1);
  });
  it.each([
    [[], /exactly one commit/],
    [[SSH], /no signers given/],
    [[SSH, '--certificate-identity', 'x'], /--certificate-oidc-issuer is required/],
    [[SSH, '--rekor-url', 'http://127.0.0.1:1', '--offline', '--allowed-signers', 'x'], /mutually exclusive/],
    [['/nonexistent', '--allowed-signers', join(FIX, 'ssh/allowed_signers')], /no such file/],
    [[SSH, '--allowed-signers', '/nonexistent'], /cannot read/],
    [[SSH, '--bogus'], /Unknown option/],
    [[SSH, '--policy', SSH], /POLICY_INVALID|not valid YAML|apiVersion|GatePolicy/],
  ])('bad input → exit 2, one line naming it (%#)', async (args, message) => {
    const r = await run('verify-commit', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
  it('garbage commit files never crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-garbage-'));
    const raw = readFileSync(GITSIGN);
    for (let i = 0; i < 40; i++) {
      const g = Buffer.from(raw);
      for (let j = 0; j < 20; j++) g[Math.floor(Math.random() * g.length)] = Math.floor(Math.random() * 256);
      const f = join(dir, `g${i}`);
      writeFileSync(f, i % 2 ? g : g.subarray(0, Math.floor(Math.random() * g.length)));
      const r = await run(
        'verify-commit',
        f,
        '--certificate-identity',
        'billy@chainguard.dev',
        '--certificate-oidc-issuer',
        'https://accounts.google.com',
      );
      expect([1]).toContain(r.code);
    }
  });
});

describe('--help', () => {
  it.each([
    ['verify-commit', /^usage: gitops-gate verify-commit /],
    ['verify-bundle', /^usage: gitops-gate verify-bundle /],
    ['audit', /^usage: gitops-gate audit .*--verify-chain.*--public-key FILE/s],
  ])('gitops-gate %s --help / -h prints its usage to stdout and exits 0', async (command, usage) => {
    for (const flag of ['--help', '-h']) {
      // Also after other flags, and without touching Redis, git or files.
      for (const argv of [
        [command, flag],
        [command, '--json', flag],
      ]) {
        const r = await run(...argv);
        expect(r, argv.join(' ')).toEqual({ code: 0, out: expect.stringMatching(usage), err: '' });
      }
    }
  });
  it('the top level: --help, -h and help print every command and exit 0; no command exits 2', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const r = await run(flag);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/verify-commit.*verify-bundle.*audit/s);
    }
    expect((await run()).code).toBe(2);
  });
  it('an unknown command is still an error, even with --help', async () => {
    const r = await run('constructor', '--help');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command constructor/);
  });
  it('--help after -- is an argument, not a request for help', async () => {
    const signers = join(mkdtempSync(join(tmpdir(), 'cli-')), 'allowed_signers');
    writeFileSync(signers, 'dev@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n');
    const r = await run('verify-commit', '--allowed-signers', signers, '--', '--help');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--help: no such file/);
  });
});

describe('gitops-gate verify-bundle', () => {
  it('follows the conformance protocol', async () => {
    const id =
      'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
    const ok = await run(
      'verify-bundle',
      '--bundle',
      join(CONF, 'happy-path-v0.3/bundle.sigstore.json'),
      '--certificate-identity',
      id,
      '--certificate-oidc-issuer',
      'https://token.actions.githubusercontent.com',
      join(CONF, 'a.txt'),
    );
    expect(ok.code).toBe(0);
    const bad = await run(
      'verify-bundle',
      '--bundle',
      join(CONF, 'signature-mismatch_fail/bundle.sigstore.json'),
      '--certificate-identity',
      id,
      '--certificate-oidc-issuer',
      'https://token.actions.githubusercontent.com',
      join(CONF, 'a.txt'),
    );
    expect(bad.code).not.toBe(0);
  });
});

describe('gitops-gate audit', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
    redisUrl = redis.url;
    const conn = createRedisConnection(redis.url, 'worker');
    const audit = createAuditTrail(conn, 'gitops-gate');
    for (const [app, sha, action] of [
      ['argocd/a', 'a'.repeat(40), 'pin'],
      ['argocd/b', 'b'.repeat(40), 'refuse-unverified'],
      ['argocd/a', 'c'.repeat(40), 'pin'],
    ] as const) {
      await audit.record({
        deliveryId: randomUUID(),
        repo: 'https://github.com/org/app',
        branch: 'main',
        sha,
        app,
        action,
        reason: 'r',
        verdict: { outcome: 'verified', method: 'ssh', code: 'VERIFIED', signer: 'dev@example.com', reasons: [] },
      });
    }
    conn.disconnect();
  });
  afterAll(async () => {
    await redis.close();
  });
  it('lists decisions, filtered by app and sha', async () => {
    const r = await run('audit', '--app', 'argocd/a');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(2);
    const j = await run('audit', '--sha', 'bbbb', '--json');
    expect(JSON.parse(j.out)).toMatchObject([{ app: 'argocd/b', action: 'refuse-unverified' }]);
    expect((await run('audit', '--since', 'yesterday')).code).toBe(2);
    expect(JSON.parse((await run('audit', '--since', '1h', '--json')).out)).toHaveLength(3);
  });
  it('--verify-chain passes, then catches an edited record', async () => {
    expect((await run('audit', '--verify-chain')).code).toBe(0);
    const conn = createRedisConnection(redis.url, 'worker');
    const [[id, fields]] = (await conn.xrange('gitops-gate:audit', '-', '+', 'COUNT', 1)) as [string, string[]][];
    const rec = JSON.parse(fields[fields.indexOf('record') + 1]);
    rec.verdict.signer = 'mallory@example.com';
    // Rewrite the record in place: same stream id, edited content.
    await conn
      .multi()
      .xdel('gitops-gate:audit', id)
      .xadd('gitops-gate:audit', id, 'app', rec.app, 'sha', rec.sha, 'record', JSON.stringify(rec))
      .exec()
      .catch(() => undefined);
    const entries = await conn.xrange('gitops-gate:audit', '-', '+');
    if (!entries.some(([i]) => i === id))
      await conn.xadd('gitops-gate:audit', '*', 'app', rec.app, 'sha', rec.sha, 'record', JSON.stringify(rec));
    conn.disconnect();
    const r = await run('audit', '--verify-chain');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/tampered: .*argocd\/a/);
  });
  it('Redis unreachable → exit 2 naming it', async () => {
    const r = await run('audit', '--redis-url', 'redis://127.0.0.1:1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot reach Redis/);
  });
  it('attacker view: a password in --redis-url is masked in the error', async () => {
    const r = await run('audit', '--redis-url', 'redis://gg:s3cr3t-in-url@127.0.0.1:1');
    expect(r.code).toBe(2);
    expect(r.err).toContain('redis://gg:***@127.0.0.1:1');
    expect(r.err).not.toContain('s3cr3t-in-url');
  });
});

describe('npx gitops-gate (the workspace bin, after npm run build)', () => {
  it('runs on Node 22 from node_modules/.bin', async () => {
    const bin = join(REPO_ROOT, 'node_modules/.bin/gitops-gate');
    const { stdout } = await promisify(execFile)(bin, ['verify-commit', SSH, '--allowed-signers', join(FIX, 'ssh/allowed_signers')], {
      env: { ...process.env, PATH: `${join(REPO_ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
    });
    expect(stdout).toMatch(/^verified: 1473882a/);
  });
});
