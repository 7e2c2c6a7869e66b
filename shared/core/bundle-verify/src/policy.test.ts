import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier } from './index.js';
import type { BundleVerdict, SignerPolicy } from './index.js';
import { DEFAULT_IDENTITY, DEFAULT_ISSUER, loadConformanceCases } from './testing/conformance-cases.js';

const cases = new Map(loadConformanceCases().map((c) => [c.name, c]));
function get(name: string) {
  const c = cases.get(name);
  if (c === undefined) throw new Error(`missing fixture ${name}`);
  return c;
}

function run(name: string, policy: SignerPolicy, artifact?: Buffer | { sha256: string }): BundleVerdict {
  const c = get(name);
  const v = createBundleVerifier(createBundleTrust(c.trustedRoot));
  const a =
    artifact === undefined
      ? { data: c.artifact }
      : Buffer.isBuffer(artifact)
        ? { data: artifact }
        : { digest: { algorithm: 'sha256' as const, hex: artifact.sha256 } };
  return v.verify(c.bundleText, a, policy);
}

const keyless = (p: { identity?: string; identityRegExp?: string; issuer?: string }): SignerPolicy => ({
  kind: 'keyless',
  issuer: DEFAULT_ISSUER,
  ...p,
});

describe('certificate identity is matched exactly (anchored)', () => {
  const bundles = ['happy-path-v0.3', 'rekor2-happy-path', 'happy-path-intoto-in-dsse-v3'];
  it.each(bundles)('%s: the exact SAN verifies', (name) => {
    expect(run(name, keyless({ identity: DEFAULT_IDENTITY }))).toMatchObject({
      ok: true,
      signer: { identity: DEFAULT_IDENTITY, issuer: DEFAULT_ISSUER },
    });
  });

  const near: Array<[string, string]> = [
    ['prefix', DEFAULT_IDENTITY.slice(0, DEFAULT_IDENTITY.length - 5)],
    ['substring', DEFAULT_IDENTITY.slice(8, 60)],
    ['suffix', DEFAULT_IDENTITY.slice(20)],
    ['extended', `${DEFAULT_IDENTITY}-evil`],
    ['other repo', 'https://github.com/sigstore-conformance/other/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main'],
    ['case', DEFAULT_IDENTITY.toUpperCase()],
  ];
  it.each(bundles.flatMap((b) => near.map(([k, id]) => [b, k, id] as const)))('%s: %s of the SAN is rejected', (name, _k, id) => {
    expect(run(name, keyless({ identity: id }))).toMatchObject({ ok: false, code: 'IDENTITY_MISMATCH' });
  });

  it('identity is not a regular expression: metacharacters are literal', () => {
    expect(run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY.replace(/\./g, '\\.') }))).toMatchObject({
      ok: false,
      code: 'IDENTITY_MISMATCH',
    });
    expect(run('happy-path-v0.3', keyless({ identity: '.*' }))).toMatchObject({ ok: false, code: 'IDENTITY_MISMATCH' });
    expect(run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY.replace('github.com', 'github.co.') }))).toMatchObject({
      ok: false,
    });
  });

  it('identityRegExp must match the whole SAN', () => {
    const ok = [
      'https://github\\.com/sigstore-conformance/.*',
      '.*@refs/heads/main',
      'https://github\\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\\.github/workflows/[^/]+@refs/heads/main',
      'nothing|https://github\\.com/.*',
    ];
    for (const re of ok) expect(run('happy-path-v0.3', keyless({ identityRegExp: re })), re).toMatchObject({ ok: true });
    const bad = [
      'sigstore-conformance', // substring
      'https://github\\.com/sigstore-conformance', // prefix
      'refs/heads/main', // suffix
      'https://github\\.com|nothing', // alternation must stay inside the anchors
      '.*@refs/heads/mai',
    ];
    for (const re of bad)
      expect(run('happy-path-v0.3', keyless({ identityRegExp: re })), re).toMatchObject({ ok: false, code: 'IDENTITY_MISMATCH' });
  });

  it('identityRegExp is compiled with the u flag it is validated with (commit-verify policy schema)', () => {
    // Unicode property escapes mean what they say only under `u`; without it `\p{Ll}` is the literal "p{Ll}".
    expect(run('happy-path-v0.3', keyless({ identityRegExp: 'https://github\\.com/\\p{Ll}+(?:-\\p{Ll}+)*/.*' }))).toMatchObject({
      ok: true,
    });
    // Identity escapes that `u` forbids are refused as the schema refuses them, not silently given another meaning.
    expect(run('happy-path-v0.3', keyless({ identityRegExp: 'https://github\\.com/sigstore\\-conformance/.*' }))).toMatchObject({
      ok: false,
      code: 'POLICY_INVALID',
    });
  });

  it('identity and identityRegExp together must both hold', () => {
    expect(run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY, identityRegExp: '.*main' }))).toMatchObject({ ok: true });
    expect(run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY, identityRegExp: '.*dev' }))).toMatchObject({ ok: false });
  });

  it('issuer is matched exactly', () => {
    for (const issuer of [
      'https://token.actions.githubusercontent.co',
      `${DEFAULT_ISSUER}/`,
      'https://accounts.google.com',
      DEFAULT_ISSUER.toUpperCase(),
    ]) {
      expect(run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY, issuer })), issuer).toMatchObject({
        ok: false,
        code: 'IDENTITY_MISMATCH',
      });
    }
  });

  it('malformed keyless policies are rejected, not treated as match-all', () => {
    expect(run('happy-path-v0.3', keyless({}))).toMatchObject({ ok: false, code: 'POLICY_INVALID' });
    expect(run('happy-path-v0.3', keyless({ identity: '' }))).toMatchObject({ ok: false, code: 'POLICY_INVALID' });
    expect(run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY, issuer: '' }))).toMatchObject({
      ok: false,
      code: 'POLICY_INVALID',
    });
    expect(run('happy-path-v0.3', keyless({ identityRegExp: '(' }))).toMatchObject({ ok: false, code: 'POLICY_INVALID' });
  });

  it('reports the signer and its Fulcio extensions', () => {
    const v = run('happy-path-v0.3', keyless({ identity: DEFAULT_IDENTITY }));
    expect(v).toMatchObject({
      ok: true,
      signer: {
        logIndex: '79571823',
        signedAt: '2024-03-19T17:26:26.000Z',
        sourceRepositoryRef: 'refs/heads/main',
        sourceRepositoryURI: 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon',
        buildSignerURI: DEFAULT_IDENTITY,
        buildTrigger: expect.any(String),
        runnerEnvironment: 'github-hosted',
      },
    });
    expect(v.signer?.sourceRepositoryDigest).toMatch(/^[0-9a-f]{40}$/);
  });

  it('a keyless policy never accepts a key-signed bundle and vice versa', () => {
    expect(run('managed-key-happy-path', keyless({ identity: DEFAULT_IDENTITY }))).toMatchObject({
      ok: false,
      code: 'POLICY_MATERIAL_MISMATCH',
    });
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(run('happy-path-v0.3', { kind: 'key', keys: [{ publicKeyPem: pem }] })).toMatchObject({
      ok: false,
      code: 'POLICY_MATERIAL_MISMATCH',
    });
  });
});

describe('DSSE attestations are tied to the artifact through the statement subject', () => {
  it.each(['happy-path-intoto-in-dsse-v3', 'rekor2-dsse-happy-path', 'intoto-with-custom-trust-root'])('%s', (name) => {
    const c = get(name);
    const ok = run(name, keyless({ identity: c.identity, issuer: c.issuer }));
    expect(ok).toMatchObject({ ok: true, statement: { predicateType: 'https://slsa.dev/provenance/v1' } });
    const subjectDigest = ok.statement!.subject[0]!.digest['sha256']!;
    // The same attestation for a different artifact (data or digest) is rejected.
    expect(run(name, keyless({ identity: c.identity, issuer: c.issuer }), Buffer.from('not the subject'))).toMatchObject({
      ok: false,
      code: 'SUBJECT_MISMATCH',
    });
    const other = subjectDigest.replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
    expect(run(name, keyless({ identity: c.identity, issuer: c.issuer }), { sha256: other })).toMatchObject({
      ok: false,
      code: 'SUBJECT_MISMATCH',
    });
    // Given only the digest of the subject, it verifies.
    expect(run(name, keyless({ identity: c.identity, issuer: c.issuer }), { sha256: subjectDigest.toUpperCase() })).toMatchObject({
      ok: true,
    });
  });
});

describe('key policies with rotation windows', () => {
  const c = get('managed-key-happy-path');
  const realKey = c.keyPem!;
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const signedAt = Date.parse(run('managed-key-happy-path', { kind: 'key', keys: [{ publicKeyPem: realKey }] }).signer!.signedAt!);
  const day = 86_400_000;

  it('accepts when every verified time is inside the window (bounds inclusive)', () => {
    expect(
      run(c.name, { kind: 'key', keys: [{ publicKeyPem: realKey, validFrom: new Date(signedAt), validUntil: new Date(signedAt + day) }] }),
    ).toMatchObject({ ok: true });
    expect(run(c.name, { kind: 'key', keys: [{ publicKeyPem: realKey, validFrom: new Date(signedAt - day) }] })).toMatchObject({
      ok: true,
    });
  });

  it('rejects a key used before its window opens or after it closes', () => {
    expect(run(c.name, { kind: 'key', keys: [{ publicKeyPem: realKey, validFrom: new Date(signedAt + 1) }] })).toMatchObject({
      ok: false,
      code: 'KEY_OUTSIDE_VALIDITY',
    });
    expect(run(c.name, { kind: 'key', keys: [{ publicKeyPem: realKey, validUntil: new Date(signedAt - 1) }] })).toMatchObject({
      ok: false,
      code: 'KEY_OUTSIDE_VALIDITY',
    });
  });

  it('rotation: picks the key whose signature verifies and whose window holds', () => {
    const v = run(c.name, {
      kind: 'key',
      keys: [
        { publicKeyPem: otherKey, validFrom: new Date(signedAt - 10 * day) },
        { publicKeyPem: realKey, validFrom: new Date(signedAt - day), validUntil: new Date(signedAt + day) },
      ],
    });
    expect(v).toMatchObject({
      ok: true,
      signer: { keyId: '4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139', logIndex: '771488337' },
    });
    // The retired copy of the right key does not help, the current one does.
    expect(
      run(c.name, {
        kind: 'key',
        keys: [
          { publicKeyPem: realKey, validUntil: new Date(signedAt - day) },
          { publicKeyPem: otherKey, validFrom: new Date(signedAt - day) },
        ],
      }),
    ).toMatchObject({ ok: false, code: 'KEY_OUTSIDE_VALIDITY' });
  });

  it('rejects a valid but different key', () => {
    expect(run(c.name, { kind: 'key', keys: [{ publicKeyPem: otherKey }] })).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
  });

  it('rejects malformed key policies', () => {
    expect(run(c.name, { kind: 'key', keys: [] })).toMatchObject({ ok: false, code: 'POLICY_INVALID' });
    expect(run(c.name, { kind: 'key', keys: [{ publicKeyPem: 'not a pem' }] })).toMatchObject({ ok: false, code: 'POLICY_INVALID' });
    expect(run(c.name, { kind: 'key', keys: [{ publicKeyPem: realKey, validFrom: new Date(Number.NaN) }] })).toMatchObject({
      ok: false,
      code: 'POLICY_INVALID',
    });
  });
});

describe('digest-only artifacts', () => {
  const messageCases = [...cases.values()].filter((c) => {
    try {
      return (JSON.parse(c.bundleText) as Record<string, unknown>)['messageSignature'] !== undefined;
    } catch {
      return false;
    }
  });

  it.each(messageCases.map((c) => [c.name, c] as const))('%s: sha256 digest gives the same verdict as the bytes', (_n, c) => {
    const policy: SignerPolicy =
      c.keyPem !== undefined ? { kind: 'key', keys: [{ publicKeyPem: c.keyPem }] } : keyless({ identity: c.identity, issuer: c.issuer });
    let trust;
    try {
      trust = createBundleTrust(c.trustedRoot);
    } catch {
      return;
    }
    const v = createBundleVerifier(trust);
    const hex = createHash('sha256').update(c.artifact).digest('hex');
    const byData = v.verify(c.bundleText, { data: c.artifact }, policy);
    const byDigest = v.verify(c.bundleText, { digest: { algorithm: 'sha256', hex } }, policy);
    expect(byDigest.ok).toBe(byData.ok);
    expect(byDigest.ok).toBe(c.expectOk);
  });

  it('a wrong digest is rejected', () => {
    const c = get('happy-path-v0.3');
    const v = createBundleVerifier(createBundleTrust());
    expect(
      v.verify(c.bundleText, { digest: { algorithm: 'sha256', hex: '00'.repeat(32) } }, keyless({ identity: DEFAULT_IDENTITY })),
    ).toMatchObject({
      ok: false,
      code: 'ARTIFACT_MISMATCH',
    });
  });
});
