/**
 * FIDO security-key SSHSIG signatures (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256). Two sources of truth for the signed
 * data layout: a software token (node:crypto keys producing PROTOCOL.u2f's exact bytes), every case cross-checked
 * with `ssh-keygen -Y verify` and, on commits, with `git verify-commit`; and OpenSSH's own regression vectors made by
 * real tokens (testdata/openssh, with OpenSSH's licence). Where gitops-gate is stricter than git, the test says why.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import type { MethodResult } from '../types.js';
import { parseAllowedSigners } from './allowed-signers.js';
import { EMAIL, Lab } from './test-lab.js';
import { armor, commitWithSignature, generateTestKey, sshsigSign } from './test-kit.js';
import type { SshSigOptions, TestKey } from './test-kit.js';
import { verifySshCommitSignature } from './verify.js';
import type { SshVerifyInput } from './verify.js';
import { sshString } from './wire.js';

const VECTORS = new URL('./testdata/openssh/', import.meta.url).pathname;
const vector = (name: string): string => readFileSync(`${VECTORS}${name}`, 'latin1');

let lab: Lab;
beforeAll(() => {
  lab = new Lab();
});
afterAll(() => lab?.cleanup());

function code(r: MethodResult): string {
  return r.ok ? 'OK' : r.code;
}

interface Case {
  raw: Buffer;
  allowed: string;
  ours: MethodResult;
  git: boolean;
  keygen: boolean;
}

/** A commit by EMAIL carrying an SSHSIG made by `key`, verified by us, by git verify-commit and by ssh-keygen -Y verify. */
function signCommit(key: TestKey, opts: SshSigOptions = {}, extra: Partial<SshVerifyInput> = {}, allowed = `${EMAIL} ${key.line}\n`): Case {
  const unsigned = lab.unsignedCommit();
  const armored = armor(sshsigSign(key, unsigned, opts));
  const raw = commitWithSignature(unsigned, armored);
  const c = parseCommit(raw);
  const ours = verifySshCommitSignature({
    payload: c.payload,
    signature: c.signature!,
    allowedSigners: parseAllowedSigners(allowed),
    principal: EMAIL,
    at: new Date(c.committer.timestamp * 1000),
    ...extra,
  });
  return { raw, allowed, ours, git: lab.gitVerify(raw, allowed).ok, keygen: lab.sshVerify(c.payload, armored, allowed, EMAIL) };
}

describe.each([['sk-ed25519'], ['sk-p256']] as const)('%s software token, cross-checked with ssh-keygen and git', (kind) => {
  const key = (): TestKey => generateTestKey(kind);

  it('a touched signature verifies in all three; application, flags and counter are in the evidence', () => {
    const c = signCommit(key(), { skFlags: 0x01, skCounter: 4242 });
    expect([code(c.ours), c.keygen, c.git]).toEqual(['OK', true, true]);
    const evidence = c.ours.ok ? c.ours.evidence.join('\n') : '';
    expect(evidence).toContain('application "ssh:"');
    expect(evidence).toContain('flags 0x01 (user present, no user verification)');
    expect(evidence).toContain('counter 4242');
  });

  it('mutation: edited payload — rejected by all three', () => {
    const k = key();
    const unsigned = lab.unsignedCommit();
    const armored = armor(sshsigSign(k, unsigned));
    const edited = Buffer.from(unsigned.toString('latin1').replace('unsigned', 'UNSIGNED'), 'latin1');
    const raw = commitWithSignature(edited, armored);
    const allowed = `${EMAIL} ${k.line}\n`;
    const c = parseCommit(raw);
    const ours = verifySshCommitSignature({
      payload: c.payload,
      signature: c.signature!,
      allowedSigners: parseAllowedSigners(allowed),
      principal: EMAIL,
      at: new Date(c.committer.timestamp * 1000),
    });
    expect([code(ours), lab.sshVerify(c.payload, armored, allowed, EMAIL), lab.gitVerify(raw, allowed).ok]).toEqual([
      'SSH_SIGNATURE_INVALID',
      false,
      false,
    ]);
  });

  it('mutation: the token signed for another application (a website) — rejected by all three', () => {
    const c = signCommit(key(), { skSignedApplication: 'https://example.com' });
    expect([code(c.ours), c.keygen, c.git]).toEqual(['SSH_SIGNATURE_INVALID', false, false]);
  });

  it('mutation: the same key material under another application is another key — not listed, rejected by all three', () => {
    const k = key();
    const app = Buffer.from(k.application!, 'latin1');
    const blob = Buffer.concat([k.blob.subarray(0, k.blob.length - 4 - app.length), sshString('ssh:other')]);
    const rebound: TestKey = { ...k, application: 'ssh:other', blob, line: `${k.type} ${blob.toString('base64')}` };
    const c = signCommit(rebound, {}, {}, `${EMAIL} ${k.line}\n`);
    expect([code(c.ours), c.keygen, c.git]).toEqual(['SSH_SIGNER_NOT_ALLOWED', false, false]);
  });

  it('no user presence (a key made with no-touch-required): accepted like git by default; requireUserPresence refuses it (stricter than git)', () => {
    const k = key();
    const c = signCommit(k, { skFlags: 0x00 });
    expect([code(c.ours), c.keygen, c.git]).toEqual(['OK', true, true]);
    const strict = signCommit(k, { skFlags: 0x00 }, { requireUserPresence: true });
    // git and ssh-keygen -Y verify ignore the flags; the policy option exists so a platform can demand a touch.
    expect([code(strict.ours), strict.keygen, strict.git]).toEqual(['SSH_SK_USER_PRESENCE_REQUIRED', true, true]);
  });

  it('requireUserVerification: only a signature with the UV flag passes (stricter than git)', () => {
    const k = key();
    expect(code(signCommit(k, { skFlags: 0x01 }, { requireUserVerification: true }).ours)).toBe('SSH_SK_USER_VERIFICATION_REQUIRED');
    const uv = signCommit(k, { skFlags: 0x05 }, { requireUserVerification: true, requireUserPresence: true });
    expect([code(uv.ours), uv.keygen, uv.git]).toEqual(['OK', true, true]);
  });

  it('mutation: flags or counter changed after signing — rejected by all three (they are signed)', () => {
    const k = key();
    const flip = (real: Buffer): Buffer => {
      const out = Buffer.from(real);
      out[out.length - 5] = out[out.length - 5]! ^ 0x04; // the flags byte, before the 4-byte counter
      return out;
    };
    const c = signCommit(k, { mapSignature: flip });
    expect([code(c.ours), c.keygen, c.git]).toEqual(['SSH_SIGNATURE_INVALID', false, false]);
    const bump = (real: Buffer): Buffer => {
      const out = Buffer.from(real);
      out[out.length - 1] = out[out.length - 1]! ^ 0x01;
      return out;
    };
    const d = signCommit(k, { mapSignature: bump });
    expect([code(d.ours), d.keygen, d.git]).toEqual(['SSH_SIGNATURE_INVALID', false, false]);
  });
});

describe('OpenSSH regression vectors (signatures made by real security keys)', () => {
  const data = Buffer.from(vector('signed-data'), 'latin1');
  const namespace = vector('namespace').trim();
  const verify = (pub: string, sig: string, principal = 'test@example.com'): MethodResult => {
    const line = vector(pub).trim().split(' ').slice(0, 2).join(' ');
    return verifySshCommitSignature({
      payload: data,
      signature: vector(sig),
      allowedSigners: parseAllowedSigners(`${principal} ${line}\n`),
      principal,
      at: new Date(),
      namespace,
    });
  };

  it.each([
    ['ed25519_sk.pub', 'ed25519_sk.sig'],
    ['ecdsa_sk.pub', 'ecdsa_sk.sig'],
  ])('%s verifies, and so does ssh-keygen -Y verify', (pub, sig) => {
    const r = verify(pub, sig);
    expect(code(r)).toBe('OK');
    const line = vector(pub).trim().split(' ').slice(0, 2).join(' ');
    expect(lab.sshVerify(data, vector(sig), `test@example.com ${line}\n`, 'test@example.com', namespace)).toBe(true);
    expect(r.ok && r.evidence.join('\n')).toMatch(/application "ssh:", flags 0x01 \(user present/);
  });

  it('the vector over other data: SSH_SIGNATURE_INVALID', () => {
    const line = vector('ed25519_sk.pub').trim().split(' ').slice(0, 2).join(' ');
    const r = verifySshCommitSignature({
      payload: Buffer.concat([data, Buffer.from('!')]),
      signature: vector('ed25519_sk.sig'),
      allowedSigners: parseAllowedSigners(`a@x ${line}`),
      principal: 'a@x',
      at: new Date(),
      namespace,
    });
    expect(code(r)).toBe('SSH_SIGNATURE_INVALID');
  });

  it('a webauthn-sk signature: refused with a precise code (stricter than ssh-keygen, which accepts it)', () => {
    const r = verify('ecdsa_sk_webauthn.pub', 'ecdsa_sk_webauthn.sig');
    expect(code(r)).toBe('SSH_SIGNATURE_ALGORITHM_UNSUPPORTED');
    expect(!r.ok && r.reason).toMatch(/webauthn-sk-ecdsa-sha2-nistp256@openssh\.com signatures .* are not accepted/);
    const line = vector('ecdsa_sk_webauthn.pub').trim().split(' ').slice(0, 2).join(' ');
    // A browser's WebAuthn assertion signs clientDataJSON, not an SSHSIG; git signs with ssh-keygen, which never makes one.
    expect(lab.sshVerify(data, vector('ecdsa_sk_webauthn.sig'), `test@example.com ${line}\n`, 'test@example.com', namespace)).toBe(true);
  });
});
