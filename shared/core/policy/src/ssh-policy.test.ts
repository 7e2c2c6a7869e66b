/**
 * The SSH options of a GatePolicy (commits.ssh.revokedKeys, requireUserPresence, requireUserVerification) through
 * the path the verifier service and the CLI take: compilePolicy -> evaluatePolicies -> verifyCommit.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from './policy.js';
import { EMAIL, Lab } from '../../commit-verify/src/ssh/test-lab.js';
import { armor, commitWithSignature, generateTestKey, sshsigSign } from '../../commit-verify/src/ssh/test-kit.js';
import { evaluatePolicies } from './commit-evaluation.js';

let lab: Lab;
beforeAll(() => {
  lab = new Lab();
});
afterAll(() => lab?.cleanup());

const policy = (ssh: Record<string, unknown>) =>
  compilePolicy(
    {
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'p', namespace: 'team-a' },
      spec: { repository: '*', branches: ['*'], commits: { ssh } },
    },
    'GatePolicy team-a/p',
    'object',
  );

async function verdict(raw: Uint8Array, ssh: Record<string, unknown>): Promise<string> {
  const { verdict: v } = await evaluatePolicies(raw, [await policy(ssh)]);
  return v.ok ? 'OK' : v.code;
}

describe('GatePolicy commits.ssh', () => {
  it('revokedKeys as a key list: the revoked key verifies nothing; the policy fingerprint (verdict cache key) changes with it', async () => {
    const key = lab.keygen('p-key', ['-t', 'ed25519']);
    const raw = lab.signedCommit(key.path);
    const allowedSigners = `${EMAIL} ${key.line}\n`;
    expect(await verdict(raw, { allowedSigners })).toBe('OK');
    expect(await verdict(raw, { allowedSigners, revokedKeys: `${key.line}\n` })).toBe('SSH_KEY_REVOKED');
    expect((await policy({ allowedSigners })).commit.fingerprint).not.toBe(
      (await policy({ allowedSigners, revokedKeys: `${key.line}\n` })).commit.fingerprint,
    );
  });

  it('revokedKeys as a base64 KRL (ssh-keygen -k): a revoked certificate serial verifies nothing', async () => {
    const ca = lab.keygen('p-ca', ['-t', 'ed25519']);
    const user = lab.keygen('p-user', ['-t', 'ed25519']);
    const cert = lab.certify(ca.path, `${user.path}.pub`, 'p-user', ['-n', EMAIL, '-z', '9']);
    const raw = lab.signedCommitViaAgent(cert, lab.agentAdd(user.path));
    const allowedSigners = `${EMAIL} cert-authority ${ca.line}\n`;
    expect(await verdict(raw, { allowedSigners })).toBe('OK');
    const krl = readFileSync(lab.krl('p-krl', 'serial: 9\n', `${ca.path}.pub`)).toString('base64');
    expect(await verdict(raw, { allowedSigners, revokedKeys: krl })).toBe('SSH_KEY_REVOKED');
  });

  it('requireUserPresence / requireUserVerification apply to security-key signatures', async () => {
    const key = generateTestKey('sk-ed25519');
    const unsigned = lab.unsignedCommit();
    const untouched = commitWithSignature(unsigned, armor(sshsigSign(key, unsigned, { skFlags: 0 })));
    const allowedSigners = `${EMAIL} ${key.line}\n`;
    expect(await verdict(untouched, { allowedSigners })).toBe('OK');
    expect(await verdict(untouched, { allowedSigners, requireUserPresence: true })).toBe('SSH_SK_USER_PRESENCE_REQUIRED');
    expect(await verdict(untouched, { allowedSigners, requireUserVerification: true })).toBe('SSH_SK_USER_VERIFICATION_REQUIRED');
  });

  it('a bad revokedKeys is POLICY_INVALID naming the field', async () => {
    await expect(
      policy({ allowedSigners: `${EMAIL} ${generateTestKey('ed25519').line}\n`, revokedKeys: 'ssh-ed25519 AAAA\n' }),
    ).rejects.toThrow(/spec\.commits\.ssh\.revokedKeys: line 1/);
    await expect(policy({ allowedSigners: `${EMAIL} ${generateTestKey('ed25519').line}\n`, requireUserPresence: 'yes' })).rejects.toThrow(
      /requireUserPresence/,
    );
  });
});
