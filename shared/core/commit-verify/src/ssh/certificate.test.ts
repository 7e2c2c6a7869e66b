/**
 * OpenSSH certificates and revocation, with test material made by the real tools: certificates issued by
 * `ssh-keygen -s`, commits signed by `git commit -S` through an `ssh-agent` holding the key and its certificate,
 * revocation lists made by `ssh-keygen -k`. Every case is also run through `git verify-commit` (with
 * gpg.ssh.revocationFile where it applies); where gitops-gate is stricter than git the test names why.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import type { MethodResult } from '../types.js';
import { parseAllowedSigners } from './allowed-signers.js';
import { parseRevocationList, revocationOf } from './revocation.js';
import { COMMIT_TIME, EMAIL, Lab } from './test-lab.js';
import type { SshKey } from './test-lab.js';
import { armor, commitWithSignature, generateTestKey, sshsigSign } from './test-kit.js';
import { verifySshCommitSignature } from './verify.js';
import type { SshVerifyInput } from './verify.js';
import { parsePublicKeyBlob } from './keys.js';

let lab: Lab;
let ca: SshKey;
let rogueCa: SshKey;
let rsaCa: SshKey;
let allowed: string;
let n = 0;

beforeAll(() => {
  lab = new Lab();
  ca = lab.keygen('ca', ['-t', 'ed25519']);
  rogueCa = lab.keygen('rogue-ca', ['-t', 'ed25519']);
  rsaCa = lab.keygen('rsa-ca', ['-t', 'rsa', '-b', '3072']);
  allowed = `*@example.com cert-authority ${ca.line}\n*@example.com cert-authority ${rsaCa.line}\n`;
});
afterAll(() => lab?.cleanup());

// 2023-11-14T22:13:20Z lies inside this window, after the first and before the second.
const VALID = '-V20231101:20231201';

interface Issued {
  raw: Buffer;
  user: SshKey;
  cert: string;
}

/** A fresh user key, a certificate for it from `caKey`, and a commit signed through the agent with that certificate. */
function issue(certArgs: string[], o: { caKey?: SshKey; keyId?: string; keyType?: string[]; email?: string; time?: number } = {}): Issued {
  const user = lab.keygen(`user-${++n}`, o.keyType ?? ['-t', 'ed25519']);
  const cert = lab.certify((o.caKey ?? ca).path, `${user.path}.pub`, o.keyId ?? `key-${n}`, certArgs);
  const env = lab.agentAdd(user.path);
  return { raw: lab.signedCommitViaAgent(cert, env, o.email, o.time), user, cert };
}

function ours(raw: Uint8Array, signers: string, extra: Partial<SshVerifyInput> = {}): MethodResult {
  const c = parseCommit(raw);
  return verifySshCommitSignature({
    payload: c.payload,
    signature: c.signature!,
    allowedSigners: parseAllowedSigners(signers),
    principal: c.committer.email,
    at: new Date(c.committer.timestamp * 1000),
    ...extra,
  });
}

function code(r: MethodResult): string {
  return r.ok ? 'OK' : r.code;
}

/** [our code, git's answer] for one commit. */
function both(raw: Buffer, signers = allowed, revocationFile?: string, extra: Partial<SshVerifyInput> = {}): [string, boolean] {
  const revoked = revocationFile ? { revoked: [parseRevocationList(readFileSync(revocationFile), revocationFile)] } : {};
  return [code(ours(raw, signers, { ...revoked, ...extra })), lab.gitVerify(raw, signers, revocationFile).ok];
}

describe('certificates issued by ssh-keygen -s, commits signed by git through ssh-agent', () => {
  it('an ed25519 user certificate for the committer: verified by both; serial, key id and CA in the evidence', () => {
    const { raw, user } = issue(['-n', EMAIL, '-z', '4711', VALID], { keyId: 'alice-laptop' });
    expect(both(raw)).toEqual(['OK', true]);
    const r = ours(raw, allowed);
    const evidence = r.ok ? r.evidence.join('\n') : '';
    expect(evidence).toContain('certificate serial 4711 key id "alice-laptop"');
    expect(evidence).toContain(`signed by CA ${ca.fingerprint}`);
    expect(r.ok && r.signer.keyFingerprint).toBe(user.fingerprint);
  });

  it('an ecdsa-p384 user key certified by an RSA CA (rsa-sha2-512), and a certificate without expiry: verified by both', () => {
    expect(both(issue(['-n', EMAIL], { caKey: rsaCa, keyType: ['-t', 'ecdsa', '-b', '384'] }).raw)).toEqual(['OK', true]);
  });

  it('an RSA user key (3072 bits) in a certificate: verified by both; a 1024-bit one is refused (stricter than git)', () => {
    expect(both(issue(['-n', EMAIL, VALID], { keyType: ['-t', 'rsa', '-b', '3072'] }).raw)).toEqual(['OK', true]);
    expect(both(issue(['-n', EMAIL, VALID], { keyType: ['-t', 'rsa', '-b', '1024'] }).raw)).toEqual(['SSH_KEY_TOO_WEAK', true]);
  });

  it('a certificate the RSA CA signed with SHA-1 (ssh-keygen -t ssh-rsa): refused (stricter than git)', () => {
    const user = lab.keygen(`user-${++n}`, ['-t', 'ed25519']);
    const cert = lab.certify(rsaCa.path, `${user.path}.pub`, `sha1-${n}`, ['-t', 'ssh-rsa', '-n', EMAIL, VALID]);
    const raw = lab.signedCommitViaAgent(cert, lab.agentAdd(user.path));
    // git (OpenSSH 9.2's ssh-keygen) accepts a SHA-1 CA signature on a certificate; SHA-1 is refused everywhere here.
    expect(both(raw)).toEqual(['SSH_RSA_SHA1_REJECTED', true]);
  });

  it('several principals, the committer among them: verified by both', () => {
    expect(both(issue(['-n', `bob@example.com,${EMAIL}`, VALID]).raw)).toEqual(['OK', true]);
  });

  it('mutation: edited payload — rejected by both', () => {
    const { raw } = issue(['-n', EMAIL, VALID]);
    const edited = Buffer.from(raw.toString('latin1').replace('agent-signed', 'agent-SIGNED'), 'latin1');
    expect(both(edited)).toEqual(['SSH_SIGNATURE_INVALID', false]);
  });

  it('mutation: rogue CA (not listed as cert-authority) — rejected by both', () => {
    const { raw } = issue(['-n', EMAIL, VALID], { caKey: rogueCa });
    expect(both(raw)).toEqual(['SSH_SIGNER_NOT_ALLOWED', false]);
  });

  it('mutation: the CA listed as a plain key, not cert-authority — rejected by both', () => {
    expect(both(issue(['-n', EMAIL, VALID]).raw, `${EMAIL} ${ca.line}\n`)).toEqual(['SSH_SIGNER_NOT_ALLOWED', false]);
  });

  it('mutation: the CA is cert-authority only for other principals — rejected by both', () => {
    expect(both(issue(['-n', EMAIL, VALID]).raw, `bob@example.com cert-authority ${ca.line}\n`)).toEqual(['SSH_SIGNER_NOT_ALLOWED', false]);
  });

  it('mutation: expired at the commit time — rejected by both (-Overify-time)', () => {
    expect(both(issue(['-n', EMAIL, '-V20230101:20231101']).raw)).toEqual(['SSH_CERT_EXPIRED', false]);
  });

  it('mutation: not yet valid at the commit time — rejected by both', () => {
    expect(both(issue(['-n', EMAIL, '-V20231201:20240101']).raw)).toEqual(['SSH_CERT_NOT_YET_VALID', false]);
  });

  it('validity is judged at the commit time, not now: an old commit inside an old window still verifies in both', () => {
    expect(both(issue(['-n', EMAIL, '-V20200101:20200201'], { time: 1_578_000_000 }).raw)).toEqual(['OK', true]);
  });

  it("the cert-authority line's own options still apply: valid-before and namespaces — rejected by both", () => {
    const { raw } = issue(['-n', EMAIL, VALID]);
    expect(both(raw, `*@example.com cert-authority,valid-before="20231101" ${ca.line}\n`)).toEqual(['SSH_KEY_EXPIRED', false]);
    expect(both(raw, `*@example.com cert-authority,namespaces="file" ${ca.line}\n`)).toEqual(['SSH_SIGNER_NAMESPACE_NOT_ALLOWED', false]);
    expect(both(raw, `*@example.com cert-authority,namespaces="git",valid-after="20230101" ${ca.line}\n`)).toEqual(['OK', true]);
  });

  it('mutation: host certificate instead of a user certificate — rejected by both', () => {
    expect(both(issue(['-h', '-n', EMAIL, VALID]).raw)).toEqual(['SSH_CERT_NOT_USER', false]);
  });

  it("mutation: principal not the committer — refused (stricter than git: git verifies it as the certificate's principal)", () => {
    const { raw } = issue(['-n', 'bob@example.com', VALID]);
    // git asks ssh-keygen -Y find-principals, which names bob@example.com from the certificate, and verifies as bob:
    // a certificate for bob would vouch for a commit claiming to be alice's. The committer binding refuses it.
    expect(both(raw)).toEqual(['SSH_CERT_PRINCIPAL_MISMATCH', true]);
  });

  it('unknown critical option: refused (stricter than git, which ignores critical options for signatures)', () => {
    expect(both(issue(['-n', EMAIL, VALID, '-O', 'critical:example@corp.com=x']).raw)).toEqual([
      'SSH_CERT_CRITICAL_OPTION_UNSUPPORTED',
      true,
    ]);
  });

  it('source-address / force-command: refused (stricter than git: a signature carries no address or command to check)', () => {
    expect(both(issue(['-n', EMAIL, VALID, '-O', 'source-address=10.0.0.0/8']).raw)).toEqual([
      'SSH_CERT_CRITICAL_OPTION_UNSUPPORTED',
      true,
    ]);
    expect(both(issue(['-n', EMAIL, VALID, '-O', 'force-command=/bin/true']).raw)).toEqual(['SSH_CERT_CRITICAL_OPTION_UNSUPPORTED', true]);
  });

  it('verify-required on a certificate of a plain key: refused (stricter than git: only a security key can show user verification)', () => {
    expect(both(issue(['-n', EMAIL, VALID, '-O', 'verify-required']).raw)).toEqual(['SSH_SK_USER_VERIFICATION_REQUIRED', true]);
  });

  it('a certificate whose CA signature was tampered with: SSH_CERT_SIGNATURE_INVALID (ssh-keygen refuses to parse it)', () => {
    const { raw } = issue(['-n', EMAIL, VALID]);
    const c = parseCommit(raw);
    const sig = Buffer.from(c.signature!.split('\n').slice(1, -1).join(''), 'base64');
    // Find the certificate's key id ("key-N") inside the signature blob and change one letter of it.
    const at = sig.indexOf(Buffer.from(`key-${n}`));
    expect(at).toBeGreaterThan(0);
    sig[at] = 'K'.charCodeAt(0);
    const tampered = commitWithSignature(c.payload, armor(sig));
    expect(both(tampered)).toEqual(['SSH_CERT_SIGNATURE_INVALID', false]);
  });
});

describe('security-key certificates (software token key, certified by ssh-keygen -s)', () => {
  function skCertCommit(kind: 'sk-ed25519' | 'sk-p256', certArgs: string[], flags = 0x01): { raw: Buffer; armored: string } {
    const key = generateTestKey(kind);
    const pub = lab.file(`sk-${++n}.pub`, `${key.line} sk-${n}\n`);
    const certPath = lab.certify(ca.path, pub, `sk-key-${n}`, certArgs);
    const certBlob = Buffer.from(readFileSync(certPath, 'utf8').split(' ')[1]!, 'base64');
    const unsigned = lab.unsignedCommit();
    const armored = armor(sshsigSign(key, unsigned, { publicKeyBlob: certBlob, skFlags: flags }));
    return { raw: commitWithSignature(unsigned, armored), armored };
  }

  it.each([['sk-ed25519'], ['sk-p256']] as const)('%s certificate: verified by us, git and ssh-keygen; flags in the evidence', (kind) => {
    const { raw, armored } = skCertCommit(kind, ['-n', EMAIL, VALID]);
    expect(both(raw)).toEqual(['OK', true]);
    expect(lab.sshVerify(parseCommit(raw).payload, armored, allowed, EMAIL)).toBe(true);
    const r = ours(raw, allowed);
    expect(r.ok && r.evidence.join('\n')).toMatch(/application "ssh:", flags 0x01/);
  });

  it('verify-required certificate: a touch without user verification is refused (stricter than git), with UV it verifies', () => {
    expect(both(skCertCommit('sk-ed25519', ['-n', EMAIL, VALID, '-O', 'verify-required'], 0x01).raw)).toEqual([
      'SSH_SK_USER_VERIFICATION_REQUIRED',
      true,
    ]);
    expect(both(skCertCommit('sk-ed25519', ['-n', EMAIL, VALID, '-O', 'verify-required'], 0x05).raw)).toEqual(['OK', true]);
  });
});

describe('revocation (git: gpg.ssh.revocationFile): a revoked key verifies nothing, whatever the date', () => {
  it('a plain key list naming the signing key: refused by both — also when it signs through a certificate', () => {
    const plain = lab.keygen(`plain-${++n}`, ['-t', 'ed25519']);
    const raw = lab.signedCommit(plain.path);
    const list = lab.file(`revoked-${n}`, `# stolen laptop\n${plain.line} alice\n`);
    const signers = `${EMAIL} ${plain.line}\n`;
    expect(both(raw, signers)).toEqual(['OK', true]);
    expect(both(raw, signers, list)).toEqual(['SSH_KEY_REVOKED', false]);
    const certified = issue(['-n', EMAIL, VALID]);
    const certList = lab.file(`revoked-${++n}`, `${readFileSync(`${certified.user.path}.pub`, 'utf8')}`);
    expect(both(certified.raw, allowed, certList)).toEqual(['SSH_KEY_REVOKED', false]);
  });

  it('a key list naming the CA: every certificate it issued is refused by both', () => {
    const { raw } = issue(['-n', EMAIL, VALID]);
    expect(both(raw, allowed, lab.file(`revoked-ca-${++n}`, `${ca.line}\n`))).toEqual(['SSH_KEY_REVOKED', false]);
  });

  it('KRL by certificate serial (ssh-keygen -k -s CA): the revoked serial is refused by both, others verify', () => {
    const revoked = issue(['-n', EMAIL, VALID, '-z', '42']);
    const other = issue(['-n', EMAIL, VALID, '-z', '43']);
    const krl = lab.krl(`krl-serial-${++n}`, 'serial: 42\nserial: 100-200\n', `${ca.path}.pub`);
    expect(both(revoked.raw, allowed, krl)).toEqual(['SSH_KEY_REVOKED', false]);
    expect(both(other.raw, allowed, krl)).toEqual(['OK', true]);
    expect(both(issue(['-n', EMAIL, VALID, '-z', '150']).raw, allowed, krl)).toEqual(['SSH_KEY_REVOKED', false]);
  });

  it('KRL serials are scoped to their CA: serial 42 of another (listed) CA still verifies in both', () => {
    const krl = lab.krl(`krl-scoped-${++n}`, 'serial: 42\n', `${ca.path}.pub`);
    expect(both(issue(['-n', EMAIL, VALID, '-z', '42'], { caKey: rsaCa }).raw, allowed, krl)).toEqual(['OK', true]);
  });

  it('KRL by key id: refused by both', () => {
    const { raw } = issue(['-n', EMAIL, VALID], { keyId: 'alice-old-laptop' });
    const krl = lab.krl(`krl-id-${++n}`, 'id: alice-old-laptop\n', `${ca.path}.pub`);
    expect(both(raw, allowed, krl)).toEqual(['SSH_KEY_REVOKED', false]);
  });

  it('KRL by explicit key and by SHA256 fingerprint (hash:): refused by both', () => {
    const a = lab.keygen(`krl-key-${++n}`, ['-t', 'ecdsa']);
    const b = lab.keygen(`krl-hash-${++n}`, ['-t', 'ed25519']);
    const krl = lab.krl(`krl-keys-${n}`, `key: ${a.line}\nhash: ${b.fingerprint}\n`);
    expect(both(lab.signedCommit(a.path), `${EMAIL} ${a.line}\n`, krl)).toEqual(['SSH_KEY_REVOKED', false]);
    expect(both(lab.signedCommit(b.path), `${EMAIL} ${b.line}\n`, krl)).toEqual(['SSH_KEY_REVOKED', false]);
    const c = lab.keygen(`krl-other-${++n}`, ['-t', 'ed25519']);
    expect(both(lab.signedCommit(c.path), `${EMAIL} ${c.line}\n`, krl)).toEqual(['OK', true]);
  });

  it('a dense serial set (ssh-keygen may encode it as a bitmap): exactly the listed serials are revoked', () => {
    const serials = Array.from({ length: 40 }, (_, i) => 1000 + 2 * i);
    const krl = lab.krl(`krl-dense-${++n}`, serials.map((s) => `serial: ${s}`).join('\n'), `${ca.path}.pub`);
    const list = parseRevocationList(readFileSync(krl), 'dense');
    // ssh-keygen picks the smallest encoding; for every other serial over 80 that is a bitmap section.
    expect(list.certs.flatMap((c) => c.bitmaps).length).toBeGreaterThan(0);
    const certBlob = (serial: number): ReturnType<typeof parsePublicKeyBlob> => {
      const user = lab.keygen(`dense-${++n}`, ['-t', 'ed25519']);
      const cert = lab.certify(ca.path, `${user.path}.pub`, `dense-${n}`, ['-n', EMAIL, '-z', String(serial)]);
      return parsePublicKeyBlob(Buffer.from(readFileSync(cert, 'utf8').split(' ')[1]!, 'base64'));
    };
    expect(revocationOf(list, certBlob(1000))).toMatch(/serial 1000/);
    expect(revocationOf(list, certBlob(1040))).toMatch(/serial 1040/);
    expect(revocationOf(list, certBlob(1041))).toBeUndefined();
    expect(revocationOf(list, certBlob(1078))).toMatch(/serial 1078/);
    expect(revocationOf(list, certBlob(1080))).toBeUndefined();
  });

  it('revocation holds whatever the date: a commit dated before the revocation is refused too', () => {
    const plain = lab.keygen(`old-${++n}`, ['-t', 'ed25519']);
    const raw = lab.signedCommit(plain.path, EMAIL, COMMIT_TIME - 365 * 86400);
    expect(both(raw, `${EMAIL} ${plain.line}\n`, lab.file(`revoked-old-${n}`, `${plain.line}\n`))).toEqual(['SSH_KEY_REVOKED', false]);
  });
});

describe('revocation list input', () => {
  it('bad input names the source and what is wrong', () => {
    expect(() => parseRevocationList('ssh-ed25519 AAAA\n', 'policy.revokedKeys')).toThrow(/policy\.revokedKeys: line 1: /);
    expect(() => parseRevocationList(Buffer.concat([Buffer.from('SSHKRL\n\0', 'latin1'), Buffer.from([0, 0, 0, 2])]), 'x')).toThrow(
      /x: malformed KRL|format version 2/,
    );
    expect(() => parseRevocationList(Buffer.from([1, 2, 0, 3]), 'bin')).toThrow(/bin: neither an OpenSSH KRL nor a text list/);
  });

  it('a KRL as base64 text (how a GatePolicy carries it) is the same list as its bytes', () => {
    const krl = readFileSync(lab.krl(`krl-b64-${++n}`, 'serial: 7\nid: x\n', `${ca.path}.pub`));
    const fromB64 = parseRevocationList(krl.toString('base64'), 'b64');
    expect(fromB64.format).toBe('krl');
    expect(fromB64.certs).toEqual(parseRevocationList(krl, 'b64').certs);
  });
});

describe('attacker: every single-bit change of a certificate or security-key signature is refused, never a crash', () => {
  function sweep(raw: Buffer, signers: string): Map<string, number> {
    const c = parseCommit(raw);
    const blob = Buffer.from(c.signature!.split('\n').slice(1, -1).join(''), 'base64');
    const codes = new Map<string, number>();
    for (let i = 0; i < blob.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const mutated = Buffer.from(blob);
        mutated[i] = mutated[i]! ^ bit;
        const r = verifySshCommitSignature({
          payload: c.payload,
          signature: armor(mutated),
          allowedSigners: parseAllowedSigners(signers),
          principal: EMAIL,
          at: new Date(c.committer.timestamp * 1000),
        });
        const k = r.ok ? `ACCEPTED at byte ${i}` : r.code;
        codes.set(k, (codes.get(k) ?? 0) + 1);
      }
    }
    return codes;
  }

  it('an sk-ecdsa certificate signature (CA body, certified key, flags, counter, SSHSIG fields)', () => {
    const key = generateTestKey('sk-p256');
    const pub = lab.file(`sweep-${++n}.pub`, `${key.line}\n`);
    const certBlob = Buffer.from(readFileSync(lab.certify(ca.path, pub, 'sweep', ['-n', EMAIL, VALID]), 'utf8').split(' ')[1]!, 'base64');
    const unsigned = lab.unsignedCommit();
    const raw = commitWithSignature(unsigned, armor(sshsigSign(key, unsigned, { publicKeyBlob: certBlob })));
    expect(code(ours(raw, allowed))).toBe('OK');
    const codes = sweep(raw, allowed);
    expect([...codes.keys()].filter((k) => k.startsWith('ACCEPTED') || k === 'SSH_VERIFY_ERROR')).toEqual([]);
    expect(codes.get('SSH_CERT_SIGNATURE_INVALID')).toBeGreaterThan(0);
    expect(codes.get('SSH_SIGNATURE_INVALID')).toBeGreaterThan(0);
  });
});
