import { describe, expect, it } from 'vitest';
import { VerifyError, createBundleTrust, createBundleVerifier, loadPublicGoodTrustedRoot } from './index.js';
import { loadConformanceCases } from './testing/conformance-cases.js';

const cases = new Map(loadConformanceCases().map((c) => [c.name, c]));
type Json = Record<string, any>;

function rootCode(root: unknown): string {
  try {
    createBundleTrust(root as object);
    return 'OK';
  } catch (e) {
    return e instanceof VerifyError ? e.code : `THROW ${String(e)}`;
  }
}

describe('trusted root', () => {
  it('the public-good root loads offline and is the default', () => {
    const root = loadPublicGoodTrustedRoot() as Json;
    expect(root['mediaType']).toMatch(/trustedroot/);
    const trust = createBundleTrust();
    expect(trust.tlogs.map((t) => t.host)).toContain('rekor.sigstore.dev');
    expect(trust.certificateAuthorities.length).toBeGreaterThan(0);
    // Every public-good CA chain is internally valid (computed once at build time).
    for (const ca of trust.certificateAuthorities) expect(ca.pathOk[0]).toBe(true);
    expect(trust.timestampAuthorities.every((t) => t.unusable === undefined)).toBe(true);
  });

  it('a time range without a start makes the whole root invalid, for every kind of authority', () => {
    const base = loadPublicGoodTrustedRoot() as Json;
    const edits: Array<(r: Json) => void> = [
      (r) => delete r['tlogs'][0]['publicKey']['validFor']['start'],
      (r) => delete r['tlogs'][0]['publicKey']['validFor'],
      (r) => (r['tlogs'][0]['publicKey']['validFor']['start'] = null),
      (r) => delete r['ctlogs'][0]['publicKey']['validFor']['start'],
      (r) => delete r['certificateAuthorities'][0]['validFor']['start'],
      (r) => delete r['timestampAuthorities'][0]['validFor']['start'],
      (r) => (r['tlogs'][0]['publicKey']['validFor']['start'] = 'yesterday'),
      (r) => (r['tlogs'][0]['publicKey']['validFor']['end'] = '2000-01-01T00:00:00Z'),
    ];
    for (const edit of edits) {
      const r = structuredClone(base);
      edit(r);
      expect(rootCode(r), edit.toString()).toBe('TRUSTED_ROOT_INVALID');
    }
    expect(rootCode(base)).toBe('OK');
  });

  it('rejects malformed roots with a code', () => {
    const base = loadPublicGoodTrustedRoot() as Json;
    for (const r of [
      {},
      { mediaType: 'x' },
      { ...base, tlogs: 'x' },
      { ...base, tlogs: [{}] },
      {
        ...base,
        certificateAuthorities: [{ validFor: { start: '2020-01-01T00:00:00Z' }, certChain: { certificates: [{ rawBytes: 'AAAA' }] } }],
      },
    ]) {
      expect(rootCode(r)).toBe('TRUSTED_ROOT_INVALID');
    }
  });

  it('time range bounds are inclusive and null end means open', () => {
    // Fixtures trust-root-*-validity-end-inclusive pin the inclusive end; here an explicit null end.
    const c = cases.get('happy-path-v0.3')!;
    const root = structuredClone(loadPublicGoodTrustedRoot()) as Json;
    for (const t of root['tlogs']) t['publicKey']['validFor']['end'] = null;
    const v = createBundleVerifier(createBundleTrust(root));
    expect(v.verify(c.bundleText, { data: c.artifact }, { kind: 'keyless', identity: c.identity, issuer: c.issuer }).ok).toBe(true);
  });
});

describe('bundle structure', () => {
  const c = cases.get('happy-path-v0.3')!;
  const v = createBundleVerifier(createBundleTrust());
  const policy = { kind: 'keyless' as const, identity: c.identity, issuer: c.issuer };
  const edit = (f: (b: Json) => void) => {
    const b = JSON.parse(c.bundleText) as Json;
    f(b);
    return v.verify(b, { data: c.artifact }, policy);
  };

  it('rejects a root certificate in a v0.1 chain even when everything else verifies', () => {
    const r = cases.get('bundle-with-root-cert_fail')!;
    const b = JSON.parse(r.bundleText) as Json;
    // The fixture also carries a checkpoint-less proof; without it the bundle would otherwise pass.
    delete b['verificationMaterial']['tlogEntries'][0]['inclusionProof'];
    const withoutRoot = structuredClone(b);
    withoutRoot['verificationMaterial']['x509CertificateChain']['certificates'].splice(1, 1);
    const rv = createBundleVerifier(createBundleTrust());
    // This fixture was signed through GitHub OAuth, not the conformance workflow identity.
    const p = { kind: 'keyless' as const, identityRegExp: '.*', issuer: 'https://github.com/login/oauth' };
    expect(rv.verify(withoutRoot, { data: r.artifact }, p)).toMatchObject({ ok: true });
    expect(rv.verify(b, { data: r.artifact }, p)).toMatchObject({ ok: false, code: 'BUNDLE_INVALID' });
  });

  it('v0.3 forbids certificate chains; content and material must be unambiguous', () => {
    expect(
      edit((b) => {
        b['verificationMaterial']['x509CertificateChain'] = { certificates: [b['verificationMaterial']['certificate']] };
        delete b['verificationMaterial']['certificate'];
      }),
    ).toMatchObject({ ok: false, code: 'BUNDLE_INVALID' });
    expect(edit((b) => (b['dsseEnvelope'] = { payload: 'AA==', payloadType: 'x', signatures: [] }))).toMatchObject({
      ok: false,
      code: 'BUNDLE_INVALID',
    });
    expect(edit((b) => (b['verificationMaterial']['publicKey'] = { hint: 'x' }))).toMatchObject({ ok: false, code: 'BUNDLE_INVALID' });
    expect(edit((b) => (b['verificationMaterial']['tlogEntries'] = []))).toMatchObject({ ok: false, code: 'TLOG_MISSING' });
    expect(edit((b) => (b['messageSignature']['messageDigest']['algorithm'] = 'SHA3_256'))).toMatchObject({ ok: false });
  });

  it('an integrated time far in the future is refused even if signed', () => {
    const past = createBundleVerifier(createBundleTrust(), { now: () => new Date('2024-03-19T17:00:00Z') });
    expect(past.verify(c.bundleText, { data: c.artifact }, policy)).toMatchObject({ ok: false, code: 'INTEGRATED_TIME_IN_FUTURE' });
    const close = createBundleVerifier(createBundleTrust(), { now: () => new Date('2024-03-19T17:25:00Z') });
    expect(close.verify(c.bundleText, { data: c.artifact }, policy)).toMatchObject({ ok: true });
  });
});
