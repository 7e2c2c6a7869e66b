import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import type { MethodResult } from '../types.js';
import { CommitVerifyError } from '../types.js';
import { createGpgKeyring } from './keyring.js';
import { verifyGpgCommitSignature } from './verify.js';

// Keys made by real gpg, commits signed by real `git commit -S`, in throw-away GNUPGHOMEs and repositories.
// Signing at other times uses gpg's --faked-system-time through a gpg.program wrapper, so no test depends on the clock
// running while it executes.

const DAY = 86_400;
const NOW = Math.floor(Date.now() / 1000);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'gpglab-'));
  readonly home = join(this.dir, 'gnupg');
  readonly repo = join(this.dir, 'repo');
  readonly wrapper = join(this.dir, 'gpg-wrapper.sh');
  private commits = 0;

  constructor() {
    mkdirSync(this.home, { mode: 0o700 });
    writeFileSync(this.wrapper, '#!/bin/sh\nexec gpg --batch --pinentry-mode loopback --passphrase= $GPG_EXTRA_ARGS "$@"\n');
    chmodSync(this.wrapper, 0o755);
    this.must('git', ['init', '-q', this.repo]);
  }

  run(cmd: string, args: string[], opts: { input?: Buffer | string; extra?: string } = {}): Run {
    const env = { ...process.env, GNUPGHOME: this.home, GPG_EXTRA_ARGS: opts.extra ?? '' };
    const input = typeof opts.input === 'string' ? Buffer.from(opts.input) : opts.input;
    const r = spawnSync(cmd, args, { env, input, encoding: 'buffer' });
    return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
  }

  must(cmd: string, args: string[], opts: { input?: Buffer | string; extra?: string } = {}): Run {
    const r = this.run(cmd, args, opts);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r;
  }

  /** Runs gpg as the wrapper does, optionally at a faked time (seconds since the epoch). */
  gpg(args: string[], at?: number, input?: string): Run {
    return this.must(this.wrapper, args, { extra: at === undefined ? '' : `--faked-system-time ${at}!`, input });
  }

  fingerprints(): string[] {
    const out = this.must('gpg', ['--with-colons', '--list-keys']).stdout;
    return [...out.matchAll(/^fpr:(?:[^:]*:){8}([0-9A-F]+):/gm)].map((m) => m[1]!);
  }

  genKey(uid: string, algo: string, usage = 'default', expire = 'never', at?: number): string {
    const before = new Set(this.fingerprints());
    this.gpg(['--quick-gen-key', uid, algo, usage, expire], at);
    const fpr = this.fingerprints().find((f) => !before.has(f));
    if (!fpr) throw new Error('no new key');
    return fpr;
  }

  addSigningSubkey(primary: string, at?: number): string {
    const before = new Set(this.fingerprints());
    this.gpg(['--quick-add-key', primary, 'ed25519', 'sign', 'never'], at);
    const fpr = this.fingerprints().find((f) => !before.has(f));
    if (!fpr) throw new Error('no new subkey');
    return fpr;
  }

  exportKey(fpr: string): string {
    return this.must('gpg', ['--armor', '--export', fpr]).stdout;
  }

  /** gpg's stored revocation certificate, with the colon gpg puts there to prevent accidental use. */
  storedRevocation(fpr: string): string {
    return readFileSync(join(this.home, 'openpgp-revocs.d', `${fpr}.rev`), 'utf8');
  }

  /** `git commit -S` with the given key; `extra` adds gpg options (e.g. a faked time) for the signing run. */
  commit(key: string, extra = ''): Buffer {
    const n = ++this.commits;
    this.must(
      'git',
      [
        '-C',
        this.repo,
        '-c',
        'user.name=Lab User',
        '-c',
        'user.email=lab@example.com',
        '-c',
        `user.signingkey=${key}`,
        '-c',
        `gpg.program=${this.wrapper}`,
        'commit',
        '--allow-empty',
        '-q',
        '-S',
        '-m',
        `commit ${n}\n\nbody line\n`,
      ],
      { extra },
    );
    return Buffer.from(this.must('git', ['-C', this.repo, 'cat-file', 'commit', 'HEAD']).stdout, 'utf8');
  }

  /** gpg's verdict on a commit, as git would ask for it; status lines keyed by keyword. */
  gpgVerify(raw: Buffer): { keywords: Set<string>; validSigPrimary: string | null } {
    const p = parseCommit(raw);
    const sigFile = join(this.dir, 'sig.asc');
    writeFileSync(sigFile, p.signature!);
    const r = this.run('gpg', ['--batch', '--status-fd=1', '--verify', sigFile, '-'], { input: p.payload });
    const keywords = new Set([...r.stdout.matchAll(/^\[GNUPG:\] (\S+)/gm)].map((m) => m[1]!));
    const valid = /^\[GNUPG:\] VALIDSIG .* ([0-9A-F]+)$/m.exec(r.stdout);
    return { keywords, validSigPrimary: valid ? valid[1]!.toLowerCase() : null };
  }

  close(): void {
    this.run('gpgconf', ['--kill', 'all']);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function verify(raw: Buffer, armoredKeys: string[], extra: { allowedFingerprints?: string[]; now?: Date } = {}) {
  const p = parseCommit(raw);
  expect(p.signatureHeader).toBe('gpgsig');
  const keyring = await createGpgKeyring(armoredKeys);
  return verifyGpgCommitSignature({ payload: p.payload, signature: p.signature!, keyring, ...extra });
}

/** The safety property against gpg: whatever we accept, gpg reports as a valid signature by the same primary key. */
function expectNotLooserThanGpg(ours: MethodResult, lab: Lab, raw: Buffer): void {
  if (!ours.ok) return;
  expect(lab.gpgVerify(raw).validSigPrimary).toBe(ours.signer.keyFingerprint);
}

describe('gpg-made keys and git-signed commits', () => {
  const lab = new Lab();
  let ed: string;
  let rsa: string;
  let edKey: string;
  let rsaKey: string;

  beforeAll(() => {
    ed = lab.genKey('Ed Signer <ed@example.com>', 'ed25519');
    rsa = lab.genKey('Rsa Signer <rsa@example.com>', 'rsa3072');
    edKey = lab.exportKey(ed);
    rsaKey = lab.exportKey(rsa);
  });
  afterAll(() => lab.close());

  it.each([
    ['ed25519', () => ed, () => edKey, 'Ed Signer <ed@example.com>'],
    ['rsa3072', () => rsa, () => rsaKey, 'Rsa Signer <rsa@example.com>'],
  ])('%s: a git commit -S verifies, like git verify-commit says', async (_name, fpr, key, uid) => {
    const raw = lab.commit(fpr());
    const result = await verify(raw, [key(), rsaKey, edKey]);
    expect(result).toMatchObject({ ok: true, method: 'gpg', signer: { identity: uid, keyFingerprint: fpr().toLowerCase() } });
    if (result.ok) {
      const signedAt = Date.parse(result.signer.signedAt!);
      expect(Math.abs(signedAt / 1000 - parseCommit(raw).committer.timestamp)).toBeLessThan(120);
    }
    expect(lab.run('git', ['-C', lab.repo, 'verify-commit', 'HEAD']).status).toBe(0);
    expectNotLooserThanGpg(result, lab, raw);
  });

  it('a key outside allowedFingerprints is rejected even though its signature is valid', async () => {
    const raw = lab.commit(ed);
    const result = await verify(raw, [edKey, rsaKey], { allowedFingerprints: [rsa] });
    expect(result).toMatchObject({ ok: false, code: 'GPG_SIGNER_NOT_ALLOWED' });
    if (!result.ok) expect(result.reason).toContain(ed.toLowerCase());
    const allowed = await verify(raw, [edKey, rsaKey], { allowedFingerprints: [rsa, ed.toLowerCase()] });
    expect(allowed).toMatchObject({ ok: true });
  });

  it('a key missing from the keyring is GPG_UNKNOWN_KEY', async () => {
    const raw = lab.commit(ed);
    expect(await verify(raw, [rsaKey])).toMatchObject({ ok: false, code: 'GPG_UNKNOWN_KEY' });
  });

  it('text-mode signatures (gpg --textmode) verify too', async () => {
    const raw = lab.commit(ed, '--textmode');
    const result = await verify(raw, [edKey]);
    expect(result).toMatchObject({ ok: true });
    if (result.ok) expect(result.evidence[0]).toMatch(/ text signature/);
    expectNotLooserThanGpg(result, lab, raw);
  });

  it('a SHA-1 commit signature is rejected although gpg 2.2 accepts it', async () => {
    const raw = lab.commit(rsa, '--digest-algo SHA1');
    expect(lab.gpgVerify(raw).keywords.has('GOODSIG')).toBe(true);
    expect(await verify(raw, [rsaKey])).toMatchObject({ ok: false, code: 'GPG_INSECURE_ALGORITHM' });
  });

  it('a signature dated after the verifier clock is GPG_SIGNATURE_FROM_FUTURE', async () => {
    const raw = lab.commit(ed, `--faked-system-time ${NOW + 2 * DAY}!`);
    expect(await verify(raw, [edKey])).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_FROM_FUTURE' });
    // ... and fine once that time has come.
    expect(await verify(raw, [edKey], { now: new Date((NOW + 3 * DAY) * 1000) })).toMatchObject({ ok: true });
  });
});

describe('subkeys', () => {
  const lab = new Lab();
  let primary: string;
  let subkey: string;
  let raw: Buffer;
  let key: string;

  beforeAll(() => {
    primary = lab.genKey('Sub Owner <sub@example.com>', 'ed25519', 'cert');
    subkey = lab.addSigningSubkey(primary);
    raw = lab.commit(primary);
    key = lab.exportKey(primary);
  });
  afterAll(() => lab.close());

  it('a signature by a signing subkey resolves to the primary fingerprint', async () => {
    const result = await verify(raw, [key]);
    expect(result).toMatchObject({ ok: true, signer: { keyFingerprint: primary.toLowerCase(), identity: 'Sub Owner <sub@example.com>' } });
    if (result.ok) expect(result.evidence.join('\n')).toContain(`signing subkey ${subkey.toLowerCase()}`);
    expectNotLooserThanGpg(result, lab, raw);
  });

  it('allowedFingerprints names primary keys: the subkey fingerprint alone does not allow it', async () => {
    expect(await verify(raw, [key], { allowedFingerprints: [subkey] })).toMatchObject({ ok: false, code: 'GPG_SIGNER_NOT_ALLOWED' });
    expect(await verify(raw, [key], { allowedFingerprints: [primary] })).toMatchObject({ ok: true });
  });

  it('a revoked signing subkey is GPG_KEY_REVOKED', async () => {
    lab.must(lab.wrapper, ['--command-fd', '0', '--edit-key', primary], { input: 'key 1\nrevkey\ny\n0\n\ny\nsave\n' });
    const revoked = lab.exportKey(primary);
    const result = await verify(raw, [revoked]);
    expect(result).toMatchObject({ ok: false, code: 'GPG_KEY_REVOKED' });
    if (!result.ok) expect(result.reason).toContain(`signing subkey ${subkey.toLowerCase()}`);
    expect(lab.run('git', ['-C', lab.repo, 'verify-commit', 'HEAD']).status).not.toBe(0);
  });
});

describe('revoked keys', () => {
  const lab = new Lab();
  let fpr: string;
  let raw: Buffer;
  let before: string;

  beforeAll(() => {
    fpr = lab.genKey('Revoked Signer <revoked@example.com>', 'ed25519');
    raw = lab.commit(fpr);
    before = lab.exportKey(fpr);
  });
  afterAll(() => lab.close());

  it('verifies before revocation', async () => {
    expect(await verify(raw, [before])).toMatchObject({ ok: true });
  });

  it("gpg's stored revocation certificate (colon removed) revokes the key, in either order", async () => {
    const cert = lab.storedRevocation(fpr).replace(/^:-----BEGIN/m, '-----BEGIN');
    for (const keys of [
      [before, cert],
      [cert, before],
    ]) {
      const result = await verify(raw, keys);
      expect(result).toMatchObject({ ok: false, code: 'GPG_KEY_REVOKED' });
      if (!result.ok) expect(result.reason).toContain(fpr.toLowerCase());
    }
  });

  it('the stored certificate with its safety colon is refused with a hint', async () => {
    const error = await createGpgKeyring([before, lab.storedRevocation(fpr)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommitVerifyError);
    expect((error as CommitVerifyError).code).toBe('GPG_KEY_INVALID');
    expect((error as CommitVerifyError).message).toMatch(/armoredKeys\[1\].*remove the colon/);
  });

  it('a revocation certificate for a key that is not given is an error naming the input', async () => {
    const other = new Lab();
    try {
      const otherFpr = other.genKey('Other <other@example.com>', 'ed25519');
      const cert = other.storedRevocation(otherFpr).replace(/^:-----BEGIN/m, '-----BEGIN');
      await expect(createGpgKeyring([before, cert])).rejects.toThrow(/armoredKeys\[1\].*not among the given keys/);
    } finally {
      other.close();
    }
  });

  it('the key exported after gpg --import of the certificate is revoked; gpg and git agree', async () => {
    lab.must('gpg', ['--batch', '--import'], { input: lab.storedRevocation(fpr).replace(/^:-----BEGIN/m, '-----BEGIN') });
    const revoked = lab.exportKey(fpr);
    expect(await verify(raw, [revoked])).toMatchObject({ ok: false, code: 'GPG_KEY_REVOKED' });
    expect(lab.gpgVerify(raw).keywords.has('REVKEYSIG')).toBe(true);
    expect(lab.run('git', ['-C', lab.repo, 'verify-commit', 'HEAD']).status).not.toBe(0);
  });
});

describe('key expiry', () => {
  const lab = new Lab();
  const t0 = NOW - 30 * DAY;

  afterAll(() => lab.close());

  it('a signature made while the key was valid still verifies after the key expired', async () => {
    const fpr = lab.genKey('Short Lived <short@example.com>', 'ed25519', 'default', '2d', t0);
    const raw = lab.commit(fpr, `--faked-system-time ${t0 + DAY}!`);
    const result = await verify(raw, [lab.exportKey(fpr)]);
    expect(result).toMatchObject({ ok: true, signer: { signedAt: new Date((t0 + DAY) * 1000).toISOString() } });
    if (result.ok) expect(result.evidence.join('\n')).toContain(`key expiry ${new Date((t0 + 2 * DAY) * 1000).toISOString()}`);
    // gpg: good signature, key expired since (EXPKEYSIG).
    expect(lab.gpgVerify(raw).keywords.has('EXPKEYSIG')).toBe(true);
    expectNotLooserThanGpg(result, lab, raw);
  });

  it('a signature made after the key expired is GPG_KEY_EXPIRED', async () => {
    // gpg will not sign with an expired key, so: sign at t0+3d with a key without expiry, then (at faked t0+1h) give
    // the key an expiry of one day, i.e. before the signature. gpg replaces the self-signature in doing so.
    const fpr = lab.genKey('Later Expired <later@example.com>', 'ed25519', 'default', 'never', t0);
    const raw = lab.commit(fpr, `--faked-system-time ${t0 + 3 * DAY}!`);
    lab.gpg(['--quick-set-expire', fpr, '1d'], t0 + 3600);
    const result = await verify(raw, [lab.exportKey(fpr)]);
    expect(result).toMatchObject({ ok: false, code: 'GPG_KEY_EXPIRED' });
    if (!result.ok) expect(result.reason).toContain(new Date((t0 + 3 * DAY) * 1000).toISOString());
  });

  it('a signature older than every self-signature of its key is GPG_KEY_NOT_YET_VALID (gpg accepts it)', async () => {
    // Documented difference: keys are judged as of the signature time, and gpg --quick-set-expire replaced the only
    // self-signature with a later one, so nothing vouched for the key when it signed.
    const fpr = lab.genKey('Recertified <recert@example.com>', 'ed25519', 'default', 'never', t0);
    const raw = lab.commit(fpr, `--faked-system-time ${t0 + 600}!`);
    lab.gpg(['--quick-set-expire', fpr, '1y'], t0 + 3600);
    expect(await verify(raw, [lab.exportKey(fpr)])).toMatchObject({ ok: false, code: 'GPG_KEY_NOT_YET_VALID' });
    expect(lab.gpgVerify(raw).keywords.has('GOODSIG')).toBe(true);
  });
});
