import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { commitObjectId, verifyGitsignCommitSignature } from './index.js';
import type { GitsignIdentityRule } from './index.js';

const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../../../../../shared/fixtures/git-commits');

interface ManifestEntry {
  kind: string;
  valid: boolean | string;
  logIndex?: string;
  integratedTime?: string;
  san?: string;
  issuer?: string;
}
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, ManifestEntry>;
const byKind = (kind: string) => Object.entries(manifest).filter(([, m]) => m.kind === kind);

function load(sha: string, kind: string) {
  const raw = readFileSync(join(FIXTURES, kind, `${sha}.commit`));
  const parsed = parseCommit(raw);
  return { raw, payload: parsed.payload, signature: parsed.signature ?? '' };
}

const trust = createBundleTrust();
const GOOGLE = 'https://accounts.google.com';
const everyone: GitsignIdentityRule[] = [
  { identity: 'billy@chainguard.dev', issuer: GOOGLE },
  { identity: 'adam.kaplan@chainguard.dev', issuer: GOOGLE },
];

describe('gitsign fixtures (public-good trust root, offline)', () => {
  it('has the expected fixture set', () => {
    expect(byKind('gitsign-offline')).toHaveLength(20);
    expect(byKind('gitsign-offline').filter(([, m]) => m.valid === true)).toHaveLength(19);
    expect(byKind('gitsign-online').length).toBeGreaterThan(0);
  });

  for (const [sha, m] of byKind('gitsign-offline')) {
    it(`${sha.slice(0, 12)} → ${m.valid === true ? `accepted as ${m.san}` : 'rejected'}`, async () => {
      const { payload, signature } = load(sha, 'gitsign-offline');
      const result = await verifyGitsignCommitSignature({ payload, signature, trust, identities: everyone });
      if (m.valid === true) {
        expect(result).toMatchObject({
          ok: true,
          method: 'gitsign',
          signer: { identity: m.san, issuer: m.issuer, logIndex: m.logIndex, signedAt: m.integratedTime },
        });
        if (result.ok) {
          expect(result.evidence.join('\n')).toMatch(/signed entry timestamp verified/);
          expect(result.evidence.join('\n')).toMatch(/inclusion proof verified/);
        }
      } else {
        expect(result).toMatchObject({ ok: false, method: 'gitsign', code: 'GITSIGN_TLOG_ENTRY_UNSUPPORTED' });
        if (!result.ok) expect(result.reason).toMatch(/older experimental layout/);
      }
    });
  }

  // Signers of the online fixtures (read from their certificates with openssl). Older certificates carry only the
  // deprecated issuer extension 1.1, newer ones both 1.1 and 1.8.
  const GITHUB = 'https://github.com/login/oauth';
  const onlineSigners: Record<string, GitsignIdentityRule> = {
    '36d1e1070f4acfb8e1d9360ce03442aacaa6a068': { identity: 'billy@chainguard.dev', issuer: GOOGLE },
    '45d6e8d224a6995f61b08b843a77e9dbc81761d2': { identity: 'billy@chainguard.dev', issuer: GITHUB },
    '6a73331a4f610192d4c4655fffd025bfc96fdcb8': { identity: 'billy@chainguard.dev', issuer: GOOGLE },
    '80702be397d481d09e8fa434446a4ab7b66f6a11': { identity: '4115580+cpanato@users.noreply.github.com', issuer: GITHUB },
    '8a3b1ce7f713b17667eea8ebbc5be9845b07592e': { identity: 'billy@chainguard.dev', issuer: 'github-sigstore-production' },
    '8d01dc2499d04259469b7c9287bfe5962334f70c': { identity: 'puerco@carabiner.dev', issuer: GOOGLE },
    '9057015f0d4a7ac83875cb2e2027cd8cd4301c04': { identity: 'ctadeu@gmail.com', issuer: GITHUB },
    '94468fe89375358feb21e63be5d0b92dc3bc3c53': { identity: 'billy@chainguard.dev', issuer: GOOGLE },
    ac3926cc31022438771597dd377fd62245f325f4: { identity: 'ctadeu@gmail.com', issuer: GITHUB },
    d3f6031561c5decb3e035e1e181aff09231a328e: { identity: 'brandon@ifup.org', issuer: GITHUB },
    ebbd60495572b1c547c3fbde17aaaddffeef8e95: { identity: 'ctadeu@gmail.com', issuer: GOOGLE },
    fc535c32c0146ef44a478ee2d9633671e3e15454: { identity: 'billy@chainguard.dev', issuer: GOOGLE },
  };

  for (const [sha] of byKind('gitsign-online')) {
    it(`online ${sha.slice(0, 12)} → GITSIGN_NEEDS_ONLINE_LOOKUP without a Rekor client`, async () => {
      const { payload, signature } = load(sha, 'gitsign-online');
      const signer = onlineSigners[sha];
      expect(signer, 'fixture signer listed').toBeDefined();
      // The allowed signer gets as far as the log lookup, which cannot happen offline.
      const result = await verifyGitsignCommitSignature({ payload, signature, trust, identities: [signer!] });
      expect(result).toMatchObject({ ok: false, code: 'GITSIGN_NEEDS_ONLINE_LOOKUP' });
      if (!result.ok) expect(result.reason).toMatch(/only be verified online/);
      // Same SAN under another issuer is not the same signer.
      const otherIssuer = await verifyGitsignCommitSignature({
        payload,
        signature,
        trust,
        identities: [{ identity: signer!.identity!, issuer: signer!.issuer === GOOGLE ? GITHUB : GOOGLE }],
      });
      expect(otherIssuer).toMatchObject({ ok: false, code: 'GITSIGN_IDENTITY_MISMATCH' });
    });
  }

  it('reconstructs each gitsign commit id from payload + signature (the online Rekor lookup key)', () => {
    for (const kind of ['gitsign-offline', 'gitsign-online']) {
      for (const [sha] of byKind(kind)) {
        const { payload, signature } = load(sha, kind);
        expect(commitObjectId(payload, signature), `${kind}/${sha}`).toBe(sha);
      }
    }
  });

  it('a signature of one commit does not verify another commit', async () => {
    const [a, b] = byKind('gitsign-offline').filter(([, m]) => m.valid === true);
    const first = load(a![0], 'gitsign-offline');
    const second = load(b![0], 'gitsign-offline');
    const result = await verifyGitsignCommitSignature({ payload: second.payload, signature: first.signature, trust, identities: everyone });
    expect(result).toMatchObject({ ok: false, code: 'GITSIGN_PAYLOAD_DIGEST_MISMATCH' });
  });

  it('file names are the fixture ids', () => {
    expect(basename(FIXTURES)).toBe('git-commits');
  });
});
