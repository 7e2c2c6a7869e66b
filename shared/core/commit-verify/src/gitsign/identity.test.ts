import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { verifyGitsignCommitSignature } from './index.js';
import type { GitsignIdentityRule } from './index.js';

const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../../../../../shared/fixtures/git-commits');
// billy@chainguard.dev via https://accounts.google.com, embedded Rekor entry.
const SHA = '200ca8647599a02ce268818bb428eeb686e8d99f';
const commit = parseCommit(readFileSync(join(FIXTURES, 'gitsign-offline', `${SHA}.commit`)));
const trust = createBundleTrust();
const GOOGLE = 'https://accounts.google.com';

async function verifyWith(identities: GitsignIdentityRule[]) {
  return verifyGitsignCommitSignature({ payload: commit.payload, signature: commit.signature!, trust, identities });
}

describe('gitsign identity policy', () => {
  it('accepts the exact SAN with the exact issuer', async () => {
    expect(await verifyWith([{ identity: 'billy@chainguard.dev', issuer: GOOGLE }])).toMatchObject({
      ok: true,
      signer: { identity: 'billy@chainguard.dev', issuer: GOOGLE },
    });
  });

  it('accepts when a later rule matches', async () => {
    const result = await verifyWith([
      { identity: 'someone@else.dev', issuer: GOOGLE },
      { identity: 'billy@chainguard.dev', issuer: GOOGLE },
    ]);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.evidence.join('\n')).toContain('identity=billy@chainguard.dev');
  });

  const mismatches: Array<[string, GitsignIdentityRule]> = [
    ['prefix', { identity: 'billy@chainguard', issuer: GOOGLE }],
    ['suffix', { identity: 'chainguard.dev', issuer: GOOGLE }],
    ['substring', { identity: 'illy@chainguard.de', issuer: GOOGLE }],
    ['superstring', { identity: 'billy@chainguard.dev.evil.com', issuer: GOOGLE }],
    ['different case', { identity: 'Billy@chainguard.dev', issuer: GOOGLE }],
    ['trailing whitespace', { identity: 'billy@chainguard.dev ', issuer: GOOGLE }],
    ['other issuer', { identity: 'billy@chainguard.dev', issuer: 'https://github.com/login/oauth' }],
    ['issuer prefix', { identity: 'billy@chainguard.dev', issuer: 'https://accounts.google' }],
    ['issuer with trailing slash', { identity: 'billy@chainguard.dev', issuer: 'https://accounts.google.com/' }],
    ['regex the user did not anchor (prefix)', { identityRegExp: 'billy@chainguard', issuer: GOOGLE }],
    ['regex the user did not anchor (suffix)', { identityRegExp: 'chainguard\\.dev', issuer: GOOGLE }],
    ['regex over a substring', { identityRegExp: 'illy@chainguard\\.de', issuer: GOOGLE }],
    ['regex alternation cannot escape the anchors', { identityRegExp: 'nobody|billy', issuer: GOOGLE }],
    ['matching regex, other issuer', { identityRegExp: '.*', issuer: 'https://github.com/login/oauth' }],
  ];
  for (const [name, rule] of mismatches) {
    it(`rejects: ${name}`, async () => {
      expect(await verifyWith([rule])).toMatchObject({ ok: false, method: 'gitsign', code: 'GITSIGN_IDENTITY_MISMATCH' });
    });
  }

  for (const re of ['billy@chainguard\\.dev', '[a-z]+@chainguard\\.dev', '.*@chainguard\\.dev', 'billy@(chainguard|example)\\.dev']) {
    it(`accepts a whole-identity regex: ${re}`, async () => {
      expect(await verifyWith([{ identityRegExp: re, issuer: GOOGLE }])).toMatchObject({
        ok: true,
        signer: { identity: 'billy@chainguard.dev' },
      });
    });
  }

  it('a rule object edited after use is re-read, never matched stale', async () => {
    const rule: GitsignIdentityRule = { identity: 'billy@chainguard.dev', issuer: GOOGLE };
    expect((await verifyWith([rule])).ok).toBe(true);
    rule.identity = 'someone@else.dev';
    expect(await verifyWith([rule])).toMatchObject({ ok: false, code: 'GITSIGN_IDENTITY_MISMATCH' });
    rule.identity = undefined;
    rule.identityRegExp = 'billy@.*';
    expect((await verifyWith([rule])).ok).toBe(true);
    rule.issuer = 'https://github.com/login/oauth';
    expect(await verifyWith([rule])).toMatchObject({ ok: false, code: 'GITSIGN_IDENTITY_MISMATCH' });
  });

  it('an empty identity list rejects everything (never "any identity")', async () => {
    expect(await verifyWith([])).toMatchObject({ ok: false, code: 'GITSIGN_NO_IDENTITY_POLICY' });
    expect(await verifyWith(undefined as unknown as GitsignIdentityRule[])).toMatchObject({
      ok: false,
      code: 'GITSIGN_NO_IDENTITY_POLICY',
    });
  });

  const invalid: Array<[string, unknown]> = [
    ['neither identity nor regex', { issuer: GOOGLE }],
    ['both identity and regex', { identity: 'billy@chainguard.dev', identityRegExp: '.*', issuer: GOOGLE }],
    ['no issuer', { identity: 'billy@chainguard.dev' }],
    ['empty issuer', { identity: 'billy@chainguard.dev', issuer: '' }],
    ['empty identity', { identity: '', issuer: GOOGLE }],
    ['empty regex', { identityRegExp: '', issuer: GOOGLE }],
    ['regex that does not compile', { identityRegExp: '(', issuer: GOOGLE }],
    ['regex that tries to close the anchoring group', { identityRegExp: 'x)|(?:.*', issuer: GOOGLE }],
    ['not an object', 'billy@chainguard.dev'],
  ];
  for (const [name, rule] of invalid) {
    it(`a malformed rule fails the whole policy closed: ${name}`, async () => {
      // Even next to a rule that would match, a broken rule means the policy is not what its author meant.
      const result = await verifyWith([{ identity: 'billy@chainguard.dev', issuer: GOOGLE }, rule as GitsignIdentityRule]);
      expect(result).toMatchObject({ ok: false, code: 'GITSIGN_IDENTITY_POLICY_INVALID' });
    });
  }
});

describe('identityRegExp is compiled exactly as the policy schema validated it (with the u flag)', () => {
  it('\\u{…} escapes and astral characters mean what they mean in unicode mode', async () => {
    const { compileRule } = await import('./identity.js');
    const issuer = 'https://accounts.google.com';
    // Without the u flag `\u{61}` is 61 "u"s: the rule a reviewer read (alice@…) would never match, or match others.
    const rule = compileRule({ identityRegExp: '\\u{61}lice@example\\.com', issuer });
    expect(rule.matches({ san: 'alice@example.com', issuer } as never)).toBe(true);
    expect(rule.matches({ san: `${'u'.repeat(61)}lice@example.com`, issuer } as never)).toBe(false);
    // One "." is one character, also outside the BMP.
    expect(compileRule({ identityRegExp: 'x.y@example\\.com', issuer }).matches({ san: 'x😀y@example.com', issuer } as never)).toBe(true);
  });
  it('a pattern unicode mode refuses is refused, not compiled loosely', async () => {
    const { compileRule } = await import('./identity.js');
    expect(() => compileRule({ identityRegExp: '\\a', issuer: 'https://accounts.google.com' })).toThrow(/does not compile/);
  });
});
