/**
 * verifySshCommitSignature against real tools: fixture commits, commits signed by `git commit -S` with keys from
 * `ssh-keygen`, and every verdict compared with `git verify-commit` (and `ssh-keygen -Y verify` where git cannot
 * carry the case). Where we deliberately differ from git, the test says so and asserts both sides.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import type { MethodResult } from '../types.js';
import { parseAllowedSigners } from './allowed-signers.js';
import type { AllowedSigner } from './allowed-signers.js';
import { sshPublicKeyFingerprint } from './keys.js';
import { armor, commitWithSignature, generateTestKey, sshsigSign } from './test-kit.js';
import type { TestKey } from './test-kit.js';
import { verifySshCommitSignature } from './verify.js';
import { sshString } from './wire.js';
import { COMMIT_TIME, EMAIL, Lab } from './test-lab.js';
import type { SshKey } from './test-lab.js';

const FIXTURES = new URL('../../../../../../shared/fixtures/git-commits/', import.meta.url).pathname;
const SSH_FIXTURES = join(FIXTURES, 'ssh');

function verifyRaw(
  raw: Uint8Array,
  allowedSigners: AllowedSigner[],
  opts: { principal?: string; at?: Date; namespace?: string } = {},
): MethodResult {
  const c = parseCommit(raw);
  return verifySshCommitSignature({
    payload: c.payload,
    signature: c.signature ?? '',
    allowedSigners,
    principal: opts.principal ?? c.committer.email,
    at: opts.at ?? new Date(c.committer.timestamp * 1000),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
  });
}

function expectReject(r: MethodResult, code: string): void {
  expect(r.ok ? `accepted: ${JSON.stringify(r)}` : r.code).toBe(code);
  if (!r.ok) {
    expect(r.method).toBe('ssh');
    expect(r.reason.length).toBeGreaterThan(0);
    expect(r.reason).not.toContain('\n');
  }
}

let lab: Lab;
beforeAll(() => {
  lab = new Lab();
});
afterAll(() => lab?.cleanup());

describe('fixture commits (sigstore/gitsign history, signed by gittuf with ssh-rsa)', () => {
  const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<
    string,
    { kind: string; valid: boolean; fingerprint?: string; committer?: string }
  >;
  const allowedText = readFileSync(join(SSH_FIXTURES, 'allowed_signers'), 'utf8');
  const signers = parseAllowedSigners(allowedText, 'fixtures/ssh/allowed_signers');
  const files = readdirSync(SSH_FIXTURES).filter((f) => f.endsWith('.commit'));

  it('has the fixture commits listed in the manifest', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
    expect(files.map((f) => f.slice(0, -7)).sort()).toEqual(
      Object.keys(manifest)
        .filter((k) => manifest[k]!.kind === 'ssh')
        .sort(),
    );
  });

  for (const f of files) {
    const sha = f.slice(0, -7);
    it(`${sha.slice(0, 12)}: agrees with the manifest and with git verify-commit`, () => {
      const raw = readFileSync(join(SSH_FIXTURES, f));
      const expected = manifest[sha]!;
      const r = verifyRaw(raw, signers);
      expect(r.ok).toBe(expected.valid);
      if (r.ok) {
        expect(r.method).toBe('ssh');
        expect(r.signer).toEqual({ identity: expected.committer, keyFingerprint: expected.fingerprint });
        expect(r.evidence.join('\n')).toContain('fixtures/ssh/allowed_signers:1');
      }
      const git = lab.gitVerify(raw, allowedText);
      expect(git.ok).toBe(r.ok);
      if (r.ok) expect(git.output).toContain(r.signer.keyFingerprint);
    });
  }

  it('rejects every single-byte change of a fixture payload', () => {
    const raw = readFileSync(join(SSH_FIXTURES, files[0]!));
    const c = parseCommit(raw);
    for (let i = 0; i < c.payload.length; i++) {
      const p = Buffer.from(c.payload);
      p[i] = p[i]! ^ 0x01;
      const r = verifySshCommitSignature({
        payload: p,
        signature: c.signature!,
        allowedSigners: signers,
        principal: c.committer.email,
        at: new Date(c.committer.timestamp * 1000),
      });
      expectReject(r, 'SSH_SIGNATURE_INVALID');
    }
  });
});

describe('commits signed by git commit -S with keys from ssh-keygen', () => {
  const specs: [string, string[]][] = [
    ['ed25519', ['-t', 'ed25519']],
    ['ecdsa-256', ['-t', 'ecdsa', '-b', '256']],
    ['ecdsa-384', ['-t', 'ecdsa', '-b', '384']],
    ['ecdsa-521', ['-t', 'ecdsa', '-b', '521']],
    ['rsa-3072', ['-t', 'rsa', '-b', '3072']],
  ];
  for (const [name, args] of specs) {
    it(`${name}: verifies, with the fingerprint ssh-keygen prints, and git verify-commit agrees`, () => {
      const key = lab.keygen(`key-${name}`, args);
      const raw = lab.signedCommit(key.path);
      const allowed = `${EMAIL} namespaces="git" ${key.line}\n`;
      const r = verifyRaw(raw, parseAllowedSigners(allowed));
      expect(r).toMatchObject({ ok: true, method: 'ssh', signer: { identity: EMAIL, keyFingerprint: key.fingerprint } });
      expect(sshPublicKeyFingerprint(key.line)).toBe(key.fingerprint);
      const git = lab.gitVerify(raw, allowed);
      expect(git.ok).toBe(true);
      expect(git.output).toContain(`Good "git" signature for ${EMAIL}`);
      expect(git.output).toContain(key.fingerprint);
    });
  }

  it('the sha256 SSHSIG hash (ssh-keygen -O hashalg=sha256) verifies; git agrees', () => {
    // (OpenSSH 9.2 still signs that with rsa-sha2-512; rsa-sha2-256 is covered by the crafted signatures below.)
    const key = lab.keygen('key-rsa-sha256', ['-t', 'rsa', '-b', '2048']);
    const payload = parseCommit(lab.signedCommit(key.path)).payload;
    const sig = lab.sshSign(payload, key.path, 'git', ['hashalg=sha256']);
    expect(Buffer.from(sig.split('\n').slice(1, -2).join(''), 'base64').includes(sshString('sha256'))).toBe(true);
    const raw = commitWithSignature(payload, sig);
    const allowed = `${EMAIL} ${key.line}\n`;
    expect(verifyRaw(raw, parseAllowedSigners(allowed))).toMatchObject({ ok: true, signer: { keyFingerprint: key.fingerprint } });
    expect(lab.gitVerify(raw, allowed).ok).toBe(true);
  });

  it('the evidence names the checks that were made', () => {
    const key = lab.keygen('key-evidence', ['-t', 'ed25519']);
    const raw = lab.signedCommit(key.path);
    const r = verifyRaw(
      raw,
      parseAllowedSigners(
        `# team\n${EMAIL} namespaces="git",valid-after="20230101",valid-before="20250101" ${key.line}\n`,
        'team.allowed_signers',
      ),
    );
    if (!r.ok) throw new Error(r.reason);
    const text = r.evidence.join('\n');
    expect(text).toContain('SSHSIG v1');
    expect(text).toContain(key.fingerprint);
    expect(text).toContain('team.allowed_signers:2');
    expect(text).toContain('namespaces="git"');
    expect(text).toContain('valid-after 2023-01-01T00:00:00.000Z');
    expect(text).toContain('valid-before 2025-01-01T00:00:00.000Z');
  });
});

describe('rejections (each compared with git verify-commit)', () => {
  let key: SshKey;
  let other: SshKey;
  let raw: Buffer;
  beforeAll(() => {
    key = lab.keygen('rej-key', ['-t', 'ed25519']);
    other = lab.keygen('rej-other', ['-t', 'ed25519']);
    raw = lab.signedCommit(key.path);
  });

  function both(allowed: string, code: string | null, gitOk: boolean, opts: { raw?: Buffer; principal?: string } = {}): void {
    const commit = opts.raw ?? raw;
    const r = verifyRaw(commit, parseAllowedSigners(allowed), opts.principal ? { principal: opts.principal } : {});
    if (code === null) expect(r.ok, JSON.stringify(r)).toBe(true);
    else expectReject(r, code);
    expect(lab.gitVerify(commit, allowed).ok).toBe(gitOk);
  }

  it('unsigned payload mutations: every byte of the payload, flipped, rejects', () => {
    const c = parseCommit(raw);
    const signers = parseAllowedSigners(`${EMAIL} ${key.line}`);
    for (let i = 0; i < c.payload.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const p = Buffer.from(c.payload);
        p[i] = p[i]! ^ mask;
        expectReject(
          verifySshCommitSignature({
            payload: p,
            signature: c.signature!,
            allowedSigners: signers,
            principal: EMAIL,
            at: new Date(COMMIT_TIME * 1000),
          }),
          'SSH_SIGNATURE_INVALID',
        );
      }
    }
    // git agrees on a mutated message (the only part that still forms a valid commit object for hash-object).
    const tampered = Buffer.from(raw.toString('latin1').replace(/signed commit (\d+)/, 'signed commit X$1'), 'latin1');
    expect(verifyRaw(tampered, signers).ok).toBe(false);
    expect(lab.gitVerify(tampered, `${EMAIL} ${key.line}\n`).ok).toBe(false);
  });

  it('appending or dropping payload bytes rejects', () => {
    const c = parseCommit(raw);
    const signers = parseAllowedSigners(`${EMAIL} ${key.line}`);
    for (const p of [Buffer.concat([c.payload, Buffer.from('\n')]), c.payload.subarray(0, -1), c.payload.subarray(1), Buffer.alloc(0)]) {
      expectReject(
        verifySshCommitSignature({ payload: p, signature: c.signature!, allowedSigners: signers, principal: EMAIL, at: new Date() }),
        'SSH_SIGNATURE_INVALID',
      );
    }
  });

  it('signature made for the "file" namespace (ssh-keygen -Y sign -n file): SSH_NAMESPACE_MISMATCH', () => {
    const payload = parseCommit(raw).payload;
    const fileSig = commitWithSignature(payload, lab.sshSign(payload, key.path, 'file'));
    both(`${EMAIL} ${key.line}\n`, 'SSH_NAMESPACE_MISMATCH', false, { raw: fileSig });
    // The same signature is fine where a "file" signature is what the caller asks for.
    expect(verifyRaw(fileSig, parseAllowedSigners(`${EMAIL} ${key.line}`), { namespace: 'file' }).ok).toBe(true);
  });

  it('principal listed with another key: SSH_SIGNER_NOT_ALLOWED', () => {
    both(`${EMAIL} ${other.line}\n`, 'SSH_SIGNER_NOT_ALLOWED', false);
  });

  it('key listed for nobody: SSH_SIGNER_NOT_ALLOWED', () => {
    both(`bob@example.com ${other.line}\n`, 'SSH_SIGNER_NOT_ALLOWED', false);
    both('', 'SSH_SIGNER_NOT_ALLOWED', false);
  });

  it('principal not listed but the key is listed for someone else: we reject, git accepts (documented difference)', () => {
    // git asks ssh-keygen -Y find-principals which principals the key belongs to, and accepts bob's key on alice's
    // commit. A deploy gate must bind the key to the committer, so this is SSH_SIGNER_NOT_ALLOWED here.
    const allowed = `bob@example.com ${key.line}\n`;
    const r = verifyRaw(raw, parseAllowedSigners(allowed));
    expectReject(r, 'SSH_SIGNER_NOT_ALLOWED');
    expect(!r.ok && r.reason).toMatch(/listed for other principals at allowed_signers:1/);
    const git = lab.gitVerify(raw, allowed);
    expect(git.ok).toBe(true);
    expect(git.output).toContain('Good "git" signature for bob@example.com');
    // …and with the principal the caller names, it is accepted.
    expect(verifyRaw(raw, parseAllowedSigners(allowed), { principal: 'bob@example.com' }).ok).toBe(true);
  });

  it('namespaces="file" only: SSH_SIGNER_NAMESPACE_NOT_ALLOWED', () => {
    both(`${EMAIL} namespaces="file" ${key.line}\n`, 'SSH_SIGNER_NAMESPACE_NOT_ALLOWED', false);
    both(`${EMAIL} namespaces="" ${key.line}\n`, 'SSH_SIGNER_NAMESPACE_NOT_ALLOWED', false);
    both(`${EMAIL} namespaces="*,!git" ${key.line}\n`, 'SSH_SIGNER_NAMESPACE_NOT_ALLOWED', false);
    both(`${EMAIL} namespaces="file,g?t" ${key.line}\n`, null, true);
  });

  it('a later line can still allow what an earlier line for the same key did not (OpenSSH scans on)', () => {
    both(`${EMAIL} namespaces="file" ${key.line}\n${EMAIL} namespaces="git" ${key.line}\n`, null, true);
    both(`${EMAIL} valid-before="20200101" ${key.line}\n${EMAIL} valid-after="20230101" ${key.line}\n`, null, true);
  });

  it('valid-before in the past relative to the commit time: SSH_KEY_EXPIRED', () => {
    both(`${EMAIL} valid-before="20231001" ${key.line}\n`, 'SSH_KEY_EXPIRED', false);
    both(`${EMAIL} valid-before="20231114221319Z" ${key.line}\n`, 'SSH_KEY_EXPIRED', false);
  });

  it('valid-after in the future relative to the commit time: SSH_KEY_NOT_YET_VALID', () => {
    both(`${EMAIL} valid-after="20240101" ${key.line}\n`, 'SSH_KEY_NOT_YET_VALID', false);
    both(`${EMAIL} valid-after="20231114221321Z" ${key.line}\n`, 'SSH_KEY_NOT_YET_VALID', false);
  });

  it('window boundaries are inclusive, to the second, as in OpenSSH', () => {
    both(`${EMAIL} valid-after="20231114221320" ${key.line}\n`, null, true);
    both(`${EMAIL} valid-before="20231114221320Z" ${key.line}\n`, null, true);
    both(`${EMAIL} valid-after="20231114221319",valid-before="20231114221320Z" ${key.line}\n`, null, true);
    both(`${EMAIL} valid-after="202311142213" ${key.line}\n`, null, true);
    both(`${EMAIL} valid-after="20231101",valid-before="20231201" ${key.line}\n`, null, true);
  });

  it('validity is checked at `at`, not at the current time', () => {
    const signers = parseAllowedSigners(`${EMAIL} valid-before="20231201" ${key.line}`);
    expect(verifyRaw(raw, signers, { at: new Date('2023-11-30T00:00:00Z') }).ok).toBe(true);
    expectReject(verifyRaw(raw, signers, { at: new Date('2023-12-01T00:00:01Z') }), 'SSH_KEY_EXPIRED');
  });

  it('wildcard principals match; a negated pattern vetoes', () => {
    both(`*@example.com ${key.line}\n`, null, true);
    both(`bob@example.com,alice@*.com ${key.line}\n`, null, true);
    // git accepts here (it verifies with the literal principal "*@example.com" found by find-principals).
    expectReject(verifyRaw(raw, parseAllowedSigners(`*@example.com,!alice@example.com ${key.line}`)), 'SSH_SIGNER_NOT_ALLOWED');
    expectReject(verifyRaw(raw, parseAllowedSigners(`Alice@example.com ${key.line}`)), 'SSH_SIGNER_NOT_ALLOWED');
  });

  it('quoted principals and a key comment work end to end', () => {
    both(`"${EMAIL},bob smith@example.com" namespaces="git" ${key.line} laptop key\n`, null, true);
  });

  it('a key listed only as cert-authority does not vouch for its own plain signatures', () => {
    both(`${EMAIL} cert-authority ${key.line}\n`, 'SSH_SIGNER_NOT_ALLOWED', false);
    const r = verifyRaw(raw, parseAllowedSigners(`${EMAIL} cert-authority ${key.line}`));
    expect(!r.ok && r.reason).toMatch(/only as a cert-authority/);
  });

  it('a signature by an SSH certificate through a cert-authority line: accepted, like git', () => {
    const ca = lab.keygen('rej-ca', ['-t', 'ed25519']);
    const user = lab.keygen('rej-user', ['-t', 'ed25519']);
    const s = lab.run('ssh-keygen', ['-q', '-s', ca.path, '-I', 'alice', '-n', EMAIL, `${user.path}.pub`]);
    expect(s.status).toBe(0);
    const payload = parseCommit(raw).payload;
    const certSigned = commitWithSignature(payload, lab.sshSign(payload, `${user.path}-cert.pub`, 'git'));
    const allowed = `*@example.com cert-authority ${ca.line}\n`;
    expect(verifyRaw(certSigned, parseAllowedSigners(allowed)).ok).toBe(true);
    expect(lab.gitVerify(certSigned, allowed).ok).toBe(true);
  });

  it('an RSA key below 2048 bits: SSH_KEY_TOO_WEAK (git accepts 1024-bit keys)', () => {
    const weak = lab.keygen('rej-rsa1024', ['-t', 'rsa', '-b', '1024']);
    const weakRaw = lab.signedCommit(weak.path);
    const allowed = `${EMAIL} ${weak.line}\n`;
    expectReject(verifyRaw(weakRaw, parseAllowedSigners(allowed)), 'SSH_KEY_TOO_WEAK');
    expect(lab.gitVerify(weakRaw, allowed).ok).toBe(true);
  });
});

describe('crafted signatures (node:crypto signer), checked against ssh-keygen -Y verify', () => {
  const payload = Buffer.from(
    'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <alice@example.com> 1700000000 +0000\ncommitter A <alice@example.com> 1700000000 +0000\n\nmsg\n',
  );
  let rsa: TestKey;
  let ed: TestKey;
  let edOther: TestKey;
  beforeAll(() => {
    rsa = generateTestKey('rsa3072');
    ed = generateTestKey('ed25519');
    edOther = generateTestKey('ed25519');
  });
  const at = new Date(COMMIT_TIME * 1000);

  function check(
    key: TestKey,
    blob: Buffer,
    code: string | null,
    sshKeygenOk: boolean,
    allowedKey: TestKey = key,
    message: Buffer = payload,
  ): void {
    const allowed = `${EMAIL} ${allowedKey.line}\n`;
    const sig = armor(blob);
    const r = verifySshCommitSignature({
      payload: message,
      signature: sig,
      allowedSigners: parseAllowedSigners(allowed),
      principal: EMAIL,
      at,
    });
    if (code === null) expect(r.ok, JSON.stringify(r)).toBe(true);
    else expectReject(r, code);
    expect(lab.sshVerify(message, `${sig}\n`, allowed, EMAIL)).toBe(sshKeygenOk);
  }

  it('the signer itself is sound: its signatures verify here and in ssh-keygen, for every key type', () => {
    for (const kind of ['ed25519', 'p256', 'p384', 'p521', 'rsa2048'] as const) {
      const k = generateTestKey(kind);
      check(k, sshsigSign(k, payload), null, true);
      check(k, sshsigSign(k, payload, { hashAlgorithm: 'sha256' }), null, true);
    }
    check(rsa, sshsigSign(rsa, payload, { rsaAlgorithm: 'rsa-sha2-256' }), null, true);
  });

  it('legacy ssh-rsa (SHA-1) signature: SSH_RSA_SHA1_REJECTED; ssh-keygen refuses it too, and git', () => {
    const blob = sshsigSign(rsa, payload, { rsaAlgorithm: 'ssh-rsa' });
    check(rsa, blob, 'SSH_RSA_SHA1_REJECTED', false);
    expect(lab.gitVerify(commitWithSignature(payload, armor(blob)), `${EMAIL} ${rsa.line}\n`).ok).toBe(false);
  });

  it('an RSA signature that lost its leading zero byte is padded back, as OpenSSH does', () => {
    // About 1 in 256 RSA signatures starts with a zero byte; vary the message until one does.
    const fullLength = sshsigSign(rsa, payload).length;
    let found: { message: Buffer; blob: Buffer } | undefined;
    for (let i = 0; i < 5000 && !found; i++) {
      const message = Buffer.concat([payload, Buffer.from(`${i}\n`)]);
      const blob = sshsigSign(rsa, message, { stripRsaLeadingZeros: true });
      if (blob.length < fullLength) found = { message, blob };
    }
    expect(found).toBeDefined();
    check(rsa, found!.blob, null, true, rsa, found!.message);
  });

  it('a 1024-bit RSA key is refused even though OpenSSH accepts it', () => {
    const weak = generateTestKey('rsa1024');
    check(weak, sshsigSign(weak, payload), 'SSH_KEY_TOO_WEAK', true);
  });

  it('SSHSIG hash algorithm other than sha512/sha256: SSH_HASH_ALGORITHM_UNSUPPORTED', () => {
    check(ed, sshsigSign(ed, payload, { hashAlgorithm: 'sha384' }), 'SSH_HASH_ALGORITHM_UNSUPPORTED', false);
    check(ed, sshsigSign(ed, payload, { hashAlgorithm: 'sha1' }), 'SSH_HASH_ALGORITHM_UNSUPPORTED', false);
    check(ed, sshsigSign(ed, payload, { hashAlgorithm: 'SHA512' }), 'SSH_HASH_ALGORITHM_UNSUPPORTED', false);
  });

  it('signed over another namespace than the blob claims: SSH_SIGNATURE_INVALID', () => {
    check(ed, sshsigSign(ed, payload, { signedNamespace: 'file' }), 'SSH_SIGNATURE_INVALID', false);
  });

  it('the blob names an allowed key that did not sign: SSH_SIGNATURE_INVALID', () => {
    check(ed, sshsigSign(ed, payload, { publicKeyBlob: edOther.blob }), 'SSH_SIGNATURE_INVALID', false, edOther);
  });

  it('SSHSIG version other than 1: SSH_SIGNATURE_VERSION_UNSUPPORTED (ssh-keygen also takes version 0)', () => {
    check(ed, sshsigSign(ed, payload, { version: 2 }), 'SSH_SIGNATURE_VERSION_UNSUPPORTED', false);
    check(ed, sshsigSign(ed, payload, { version: 0 }), 'SSH_SIGNATURE_VERSION_UNSUPPORTED', true);
  });

  it('unsigned data in the reserved field or after the blob: SSH_SIGNATURE_MALFORMED', () => {
    check(ed, sshsigSign(ed, payload, { reserved: Buffer.from('x') }), 'SSH_SIGNATURE_MALFORMED', true);
    check(ed, sshsigSign(ed, payload, { trailing: Buffer.from([0]) }), 'SSH_SIGNATURE_MALFORMED', false);
  });

  it('DSA, unknown and DSA-certificate key types get their own codes; a truncated certificate is malformed', () => {
    const cases: [Buffer, string][] = [
      [Buffer.concat([sshString('ssh-dss'), sshString(Buffer.alloc(8, 1))]), 'SSH_KEY_TYPE_UNSUPPORTED'],
      [Buffer.concat([sshString('x-unknown@example.com'), sshString('')]), 'SSH_KEY_TYPE_UNSUPPORTED'],
      [Buffer.concat([sshString('ssh-dss-cert-v01@openssh.com'), sshString('nonce')]), 'SSH_CERT_UNSUPPORTED'],
      [Buffer.concat([sshString('ssh-ed25519-cert-v01@openssh.com'), sshString('nonce')]), 'SSH_SIGNATURE_MALFORMED'],
    ];
    for (const [pub, code] of cases) {
      const r = verifySshCommitSignature({
        payload,
        signature: armor(sshsigSign(ed, payload, { publicKeyBlob: pub })),
        allowedSigners: [],
        principal: EMAIL,
        at,
      });
      expectReject(r, code);
    }
  });

  it('a signature algorithm that does not belong to the key type: rejected, like ssh-keygen', () => {
    const asEcdsa = (real: Buffer): Buffer => Buffer.concat([sshString('ecdsa-sha2-nistp256'), real.subarray(4 + 'ssh-ed25519'.length)]);
    check(ed, sshsigSign(ed, payload, { mapSignature: asEcdsa }), 'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', false);
    const p256 = generateTestKey('p256');
    const asP384 = (real: Buffer): Buffer =>
      Buffer.concat([sshString('ecdsa-sha2-nistp384'), real.subarray(4 + 'ecdsa-sha2-nistp256'.length)]);
    check(p256, sshsigSign(p256, payload, { mapSignature: asP384 }), 'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', false);
    // An RSA key with an unknown RSA signature name.
    const asSha384 = (real: Buffer): Buffer => Buffer.concat([sshString('rsa-sha2-384'), real.subarray(4 + 'rsa-sha2-512'.length)]);
    check(rsa, sshsigSign(rsa, payload, { mapSignature: asSha384 }), 'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', false);
  });

  it('malformed inner signatures: wrong lengths, trailing bytes, negative or oversized ECDSA values', () => {
    const p256 = generateTestKey('p256');
    const edCases: ((real: Buffer) => Buffer)[] = [
      (real) => real.subarray(0, real.length - 1), // truncated: length prefix now lies
      (real) => Buffer.concat([sshString('ssh-ed25519'), sshString(real.subarray(real.length - 63))]), // 63-byte signature
      (real) => Buffer.concat([real, Buffer.from([0])]), // trailing byte
      () => Buffer.alloc(0),
    ];
    for (const map of edCases)
      check(
        ed,
        sshsigSign(ed, payload, { mapSignature: map }),
        edCases.indexOf(map) === 1 ? 'SSH_SIGNATURE_INVALID' : 'SSH_SIGNATURE_MALFORMED',
        false,
      );
    const ecInner =
      (r: Buffer, s: Buffer): ((real: Buffer) => Buffer) =>
      () =>
        Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString(Buffer.concat([sshString(r), sshString(s)]))]);
    check(
      p256,
      sshsigSign(p256, payload, { mapSignature: ecInner(Buffer.from([0x80, 1]), Buffer.from([1])) }),
      'SSH_SIGNATURE_MALFORMED',
      false,
    );
    check(
      p256,
      sshsigSign(p256, payload, { mapSignature: ecInner(Buffer.alloc(33, 0x7f), Buffer.from([1])) }),
      'SSH_SIGNATURE_INVALID',
      false,
    );
    check(p256, sshsigSign(p256, payload, { mapSignature: ecInner(Buffer.alloc(0), Buffer.alloc(0)) }), 'SSH_SIGNATURE_INVALID', false);
    // RSA signature longer than the modulus.
    const long = (): Buffer => Buffer.concat([sshString('rsa-sha2-512'), sshString(Buffer.alloc(385, 1))]);
    check(rsa, sshsigSign(rsa, payload, { mapSignature: long }), 'SSH_SIGNATURE_INVALID', false);
  });
});

describe('armor and input handling', () => {
  const ed = generateTestKey('ed25519');
  const payload = Buffer.from('payload\n');
  const allowedSigners = parseAllowedSigners(`${EMAIL} ${ed.line}`);
  const at = new Date(COMMIT_TIME * 1000);
  const sig = armor(sshsigSign(ed, payload));
  const v = (signature: string, extra: Partial<Parameters<typeof verifySshCommitSignature>[0]> = {}): MethodResult =>
    verifySshCommitSignature({ payload, signature, allowedSigners, principal: EMAIL, at, ...extra });

  it('accepts the armor with CRLF line ends, surrounding whitespace and a final newline', () => {
    expect(v(sig).ok).toBe(true);
    expect(v(`${sig}\n`).ok).toBe(true);
    expect(v(sig.replace(/\n/g, '\r\n')).ok).toBe(true);
    expect(v(`\n  ${sig}\n\n`).ok).toBe(true);
    expect(v(sig.replace(/\n(?!-----END)/g, '\n').replace(/([A-Za-z0-9+/=]{70})\n(?=[A-Za-z0-9+/])/g, '$1')).ok).toBe(true);
  });

  it('rejects broken armor with SSH_SIGNATURE_MALFORMED', () => {
    const body = sig.split('\n').slice(1, -1).join('\n');
    for (const bad of [
      '',
      'garbage',
      body,
      sig.replace('-----BEGIN SSH SIGNATURE-----', '-----BEGIN PGP SIGNATURE-----'),
      sig.replace('-----END SSH SIGNATURE-----', ''),
      sig.replace('-----BEGIN SSH SIGNATURE-----\n', '-----BEGIN SSH SIGNATURE-----'),
      `${sig}\ntrailing text`,
      sig.replace(/\n(?=[A-Za-z0-9+/])/, '\n '),
      sig.replace(/\n(?=[A-Za-z0-9+/])/, '\n\t'),
      sig.replace(/=*\n-----END/, '\n-----END'),
      sig.replace(/\n([A-Za-z0-9+/])/, '\n*$1'),
      '-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----',
      '-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----',
      `-----BEGIN SSH SIGNATURE-----\n${'A'.repeat(300_000)}\n-----END SSH SIGNATURE-----`,
    ]) {
      expectReject(v(bad), 'SSH_SIGNATURE_MALFORMED');
    }
  });

  it('bad caller input is SSH_INPUT_INVALID, never an exception', () => {
    expectReject(v(sig, { principal: '' }), 'SSH_INPUT_INVALID');
    expectReject(v(sig, { at: new Date(Number.NaN) }), 'SSH_INPUT_INVALID');
    expectReject(v(sig, { namespace: '' }), 'SSH_INPUT_INVALID');
    expectReject(v(sig, { payload: 'text' as unknown as Uint8Array }), 'SSH_INPUT_INVALID');
    expectReject(v(sig, { allowedSigners: null as unknown as AllowedSigner[] }), 'SSH_INPUT_INVALID');
    expectReject(v(42 as unknown as string), 'SSH_INPUT_INVALID');
    const r = verifySshCommitSignature(null as unknown as Parameters<typeof verifySshCommitSignature>[0]);
    expect(r.ok).toBe(false);
    // Hand-built signer entries with missing fields cannot crash it either.
    const junk = [{ principals: [EMAIL] } as unknown as AllowedSigner];
    expect(v(sig, { allowedSigners: junk }).ok).toBe(false);
  });

  it('a hand-built AllowedSigner (no parser) works when it carries the canonical key', () => {
    const s: AllowedSigner = {
      principals: [EMAIL],
      certAuthority: false,
      keyType: 'ssh-ed25519',
      publicKey: new Uint8Array(ed.blob),
      fingerprint: 'x',
      source: 'code',
      line: 0,
    };
    expect(v(sig, { allowedSigners: [s] }).ok).toBe(true);
  });
});
