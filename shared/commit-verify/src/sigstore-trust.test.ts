import { describe, expect, it } from 'vitest';
import { createSigstoreTrust, loadPublicGoodTrustedRoot } from './sigstore-trust.js';
import { CommitVerifyError } from './types.js';

describe('sigstore trust material', () => {
  it('loads the public-good trusted root offline from @sigstore/tuf', () => {
    const root = loadPublicGoodTrustedRoot() as { mediaType: string; tlogs: Array<{ baseUrl: string }>; certificateAuthorities: unknown[] };
    expect(root.mediaType).toMatch(/^application\/vnd\.dev\.sigstore\.trustedroot\+json/);
    expect(root.tlogs.map((t) => t.baseUrl)).toContain('https://rekor.sigstore.dev');
    expect(root.certificateAuthorities.length).toBeGreaterThan(0);
    // Fresh objects: callers may not corrupt each other's copy.
    expect(loadPublicGoodTrustedRoot()).not.toBe(root);
  });

  it('parses CAs, log keys by log id, CT logs and TSAs', () => {
    const trust = createSigstoreTrust();
    expect(trust.certificateAuthorities.length).toBeGreaterThanOrEqual(2);
    for (const ca of trust.certificateAuthorities) {
      expect(ca.certChain.length).toBeGreaterThan(0);
      expect(ca.validFor.start.getTime()).toBeLessThan(ca.validFor.end.getTime());
    }
    // rekor.sigstore.dev's log id (sha256 of its key), as the fixtures' entries name it.
    const rekor = trust.tlogsByLogId.get('c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d');
    expect(rekor?.[0]?.baseURL).toBe('https://rekor.sigstore.dev');
    expect(rekor?.[0]?.publicKey.asymmetricKeyType).toBe('ec');
    expect(trust.ctlogs.length).toBeGreaterThan(0);
    expect(trust.timestampAuthorities.length).toBeGreaterThan(0);
    expect(trust.material.tlogs).toBe(trust.tlogs);
    expect(Object.isFrozen(trust)).toBe(true);
  });

  it('takes a private trusted_root.json object in place of the public-good one', () => {
    const pg = loadPublicGoodTrustedRoot() as Record<string, unknown[]>;
    const onlyFirstLog = { ...pg, tlogs: pg['tlogs']!.slice(0, 1) };
    const trust = createSigstoreTrust(onlyFirstLog);
    expect(trust.tlogs).toHaveLength(1);
    expect(trust.json).toBe(onlyFirstLog);
  });

  const bad: Array<[string, unknown]> = [
    ['null', null],
    ['an array', []],
    ['wrong media type', { mediaType: 'application/json', tlogs: [{}], certificateAuthorities: [{}] }],
    ['no logs', { ...(loadPublicGoodTrustedRoot()), tlogs: [] }],
    ['no CAs', { ...(loadPublicGoodTrustedRoot()), certificateAuthorities: [] }],
    [
      'a CA with no certificates',
      { ...(loadPublicGoodTrustedRoot()), certificateAuthorities: [{ certChain: { certificates: [] }, validFor: { start: '2020-01-01T00:00:00Z' } }] },
    ],
    [
      'a log without a key',
      { ...(loadPublicGoodTrustedRoot()), tlogs: [{ baseUrl: 'https://x', logId: { keyId: 'AAAA' } }] },
    ],
    [
      'a certificate that is not one',
      {
        ...(loadPublicGoodTrustedRoot()),
        certificateAuthorities: [{ certChain: { certificates: [{ rawBytes: 'AAAA' }] }, validFor: { start: '2020-01-01T00:00:00Z' } }],
      },
    ],
  ];
  for (const [name, json] of bad) {
    it(`refuses a trusted root with ${name}`, () => {
      let err: unknown;
      try {
        createSigstoreTrust(json as object);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CommitVerifyError);
      expect((err as CommitVerifyError).code).toBe('SIGSTORE_TRUST_INVALID');
    });
  }
});
