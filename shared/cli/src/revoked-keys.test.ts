/**
 * `gitops-gate verify-commit --revoked-keys FILE` (git's gpg.ssh.revocationFile): a plain key list or an OpenSSH KRL
 * made by `ssh-keygen -k`; it is added to every policy that trusts SSH keys, also to a policy file's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRepo, generateSshKey } from '@gitops-gate/testing';
import { runCli } from './test-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-revoked-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (...argv: string[]) => runCli(argv, {});

describe('verify-commit --revoked-keys', () => {
  const key = generateSshKey(dir, 'k');
  const other = generateSshKey(dir, 'other');
  const allowed = join(dir, 'allowed');
  writeFileSync(allowed, `${key.allowedSignersLine('dev@example.com')}\n`);
  const repo = createTestRepo(join(dir, 'r'));
  const sha = repo.commit('signed', { signWith: key });
  const verify = (...extra: string[]) => run('verify-commit', sha, '--repo', repo.workDir, ...extra);

  it('a key list naming the signing key: not verified, SSH_KEY_REVOKED; a list of other keys changes nothing', async () => {
    writeFileSync(join(dir, 'revoked'), `${key.publicKey}\n`);
    writeFileSync(join(dir, 'revoked-other'), `${other.publicKey}\n`);
    expect((await verify('--allowed-signers', allowed)).code).toBe(0);
    const r = await verify('--allowed-signers', allowed, '--revoked-keys', join(dir, 'revoked'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/SSH_KEY_REVOKED: key SHA256:\S+ is revoked by .*revoked/);
    expect((await verify('--allowed-signers', allowed, '--revoked-keys', join(dir, 'revoked-other'))).code).toBe(0);
  });

  it('a KRL made by ssh-keygen -k, also on top of a policy file', async () => {
    writeFileSync(join(dir, 'spec'), `key: ${key.publicKey}\n`);
    execFileSync('ssh-keygen', ['-q', '-k', '-f', join(dir, 'krl'), join(dir, 'spec')]);
    expect((await verify('--allowed-signers', allowed, '--revoked-keys', join(dir, 'krl'))).err).toMatch(/SSH_KEY_REVOKED/);
    const policy = join(dir, 'policy.json');
    writeFileSync(
      policy,
      JSON.stringify({
        apiVersion: 'gitops-gate.io/v1alpha1',
        kind: 'GatePolicy',
        metadata: { name: 'p' },
        spec: { repository: '*', branches: ['*'], commits: { ssh: { allowedSigners: `${key.allowedSignersLine('dev@example.com')}\n` } } },
      }),
    );
    expect((await verify('--policy', policy)).code).toBe(0);
    expect((await verify('--policy', policy, '--revoked-keys', join(dir, 'krl'))).code).toBe(1);
  });

  it('usage errors name the problem: unreadable file, malformed list, no SSH signers', async () => {
    expect(await verify('--allowed-signers', allowed, '--revoked-keys', join(dir, 'nope'))).toMatchObject({
      code: 2,
      err: expect.stringMatching(/--revoked-keys: cannot read/),
    });
    writeFileSync(join(dir, 'bad'), 'ssh-ed25519 AAAA\n');
    expect(await verify('--allowed-signers', allowed, '--revoked-keys', join(dir, 'bad'))).toMatchObject({
      code: 2,
      err: expect.stringMatching(/--revoked-keys: .*bad: line 1/),
    });
    expect(
      await verify('--certificate-identity', 'a@b', '--certificate-oidc-issuer', 'https://x', '--revoked-keys', join(dir, 'revoked')),
    ).toMatchObject({ code: 2, err: expect.stringMatching(/needs SSH signers/) });
  });
});
