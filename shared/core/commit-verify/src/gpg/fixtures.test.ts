import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { createGpgKeyring, type GpgKeyring } from './keyring.js';
import { verifyGpgCommitSignature } from './verify.js';

// Real GitHub web-flow commits from sigstore/gitsign (see /work/shared/README.md), checked three ways: the manifest's
// verdict, `gpg --verify` and `git verify-commit` in a throw-away GNUPGHOME.
const FIXTURES = new URL('../../../../../../shared/fixtures/git-commits/', import.meta.url).pathname;
const PGP_DIR = join(FIXTURES, 'pgp');
const WEB_FLOW_KEY = readFileSync(join(PGP_DIR, 'github-web-flow-2017.asc'), 'utf8');
const WEB_FLOW_FPR = '5de3e0509c47ea3cf04a42d34aee18f83afdeb23';
const WEB_FLOW_UID = 'GitHub (web-flow commit signing) <noreply@github.com>';

interface ManifestEntry {
  kind: string;
  keyId?: string;
  valid: boolean | string;
  fingerprint?: string;
}
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, ManifestEntry>;
const commits = readdirSync(PGP_DIR)
  .filter((f) => f.endsWith('.commit'))
  .map((f) => ({ sha: f.slice(0, -'.commit'.length), raw: readFileSync(join(PGP_DIR, f)) }));

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: Buffer) {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, input, encoding: 'buffer' });
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

describe('pgp fixture commits', () => {
  let keyring: GpgKeyring;
  let home: string;
  let repo: string;

  beforeAll(async () => {
    keyring = await createGpgKeyring([WEB_FLOW_KEY]);
    home = mkdtempSync(join(tmpdir(), 'gpgfx-'));
    repo = mkdtempSync(join(tmpdir(), 'gpgfx-repo-'));
    const env = { GNUPGHOME: home };
    expect(run('gpg', ['--batch', '--import', join(PGP_DIR, 'github-web-flow-2017.asc')], env).status).toBe(0);
    expect(run('git', ['init', '-q', repo], env).status).toBe(0);
    for (const c of commits) {
      const r = run('git', ['-C', repo, 'hash-object', '-t', 'commit', '-w', '--stdin'], env, c.raw);
      expect(r.stdout.trim()).toBe(c.sha);
    }
  });

  afterAll(() => {
    run('gpgconf', ['--kill', 'all'], { GNUPGHOME: home });
    rmSync(home, { recursive: true, force: true });
    rmSync(repo, { recursive: true, force: true });
  });

  it('has the 15 pgp fixtures, 12 by the 2017 key and 3 by a key that is not provided', () => {
    expect(commits).toHaveLength(15);
    expect(commits.filter((c) => manifest[c.sha]?.valid === true)).toHaveLength(12);
    expect(commits.filter((c) => manifest[c.sha]?.valid === 'unknown-key')).toHaveLength(3);
  });

  it('gives every fixture commit its manifest verdict', async () => {
    for (const c of commits) {
      const m = manifest[c.sha]!;
      const p = parseCommit(c.raw);
      const result = await verifyGpgCommitSignature({ payload: p.payload, signature: p.signature!, keyring });
      if (m.valid === true) {
        expect(result, c.sha).toMatchObject({
          ok: true,
          method: 'gpg',
          signer: { identity: WEB_FLOW_UID, keyFingerprint: m.fingerprint!.toLowerCase() },
        });
        // GitHub signs at commit time: the signature time equals the committer timestamp.
        if (result.ok) expect(result.signer.signedAt).toBe(new Date(p.committer.timestamp * 1000).toISOString());
      } else {
        expect(m.valid).toBe('unknown-key');
        expect(result, c.sha).toMatchObject({ ok: false, method: 'gpg', code: 'GPG_UNKNOWN_KEY' });
        if (!result.ok) expect(result.reason).toContain(m.keyId!.toLowerCase());
      }
    }
  });

  it('agrees with gpg --verify (as git runs it: detached signature file, payload on stdin)', async () => {
    for (const c of commits) {
      const p = parseCommit(c.raw);
      const sigFile = join(home, `${c.sha}.sig`);
      writeFileSync(sigFile, p.signature!);
      const g = run('gpg', ['--batch', '--status-fd=1', '--verify', sigFile, '-'], { GNUPGHOME: home }, p.payload);
      const validSig = /^\[GNUPG:\] VALIDSIG ([0-9A-F]+) .* ([0-9A-F]+)$/m.exec(g.stdout);
      const ours = await verifyGpgCommitSignature({ payload: p.payload, signature: p.signature!, keyring });
      if (validSig) {
        expect(g.stdout).toMatch(/^\[GNUPG:\] GOODSIG /m);
        expect(ours.ok, c.sha).toBe(true);
        // The last VALIDSIG field is the primary key fingerprint.
        if (ours.ok) expect(ours.signer.keyFingerprint).toBe(validSig[2]!.toLowerCase());
      } else {
        expect(g.stdout, c.sha).toMatch(/^\[GNUPG:\] NO_PUBKEY /m);
        expect(ours).toMatchObject({ ok: false, code: 'GPG_UNKNOWN_KEY' });
      }
    }
  });

  it('agrees with git verify-commit', async () => {
    for (const c of commits) {
      const g = run('git', ['-C', repo, 'verify-commit', c.sha], { GNUPGHOME: home });
      const p = parseCommit(c.raw);
      const ours = await verifyGpgCommitSignature({ payload: p.payload, signature: p.signature!, keyring });
      expect(ours.ok, c.sha).toBe(g.status === 0);
      expect(ours.ok).toBe(manifest[c.sha]!.valid === true);
    }
  });

  it('applies allowedFingerprints: spaced upper-case form of the web-flow fingerprint allows, another key does not', async () => {
    const spaced = '5DE3 E050 9C47 EA3C F04A  42D3 4AEE 18F8 3AFD EB23';
    const valid = commits.filter((c) => manifest[c.sha]!.valid === true);
    for (const c of valid) {
      const p = parseCommit(c.raw);
      const input = { payload: p.payload, signature: p.signature!, keyring };
      expect(await verifyGpgCommitSignature({ ...input, allowedFingerprints: [spaced] })).toMatchObject({ ok: true });
      const other = await verifyGpgCommitSignature({ ...input, allowedFingerprints: ['0'.repeat(39) + '1'] });
      expect(other).toMatchObject({ ok: false, code: 'GPG_SIGNER_NOT_ALLOWED' });
      expect(await verifyGpgCommitSignature({ ...input, allowedFingerprints: [] })).toMatchObject({
        ok: false,
        code: 'GPG_SIGNER_NOT_ALLOWED',
      });
    }
  });

  it('records in the evidence that the key carried wrong quick-check octets', async () => {
    const c = commits.find((x) => manifest[x.sha]!.valid === true)!;
    const p = parseCommit(c.raw);
    const result = await verifyGpgCommitSignature({ payload: p.payload, signature: p.signature!, keyring });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.evidence.join('\n')).toContain(WEB_FLOW_FPR);
      expect(result.evidence.join('\n')).toMatch(/quick-check octets 9901 \(digest starts 8477\)/);
    }
  });
});
