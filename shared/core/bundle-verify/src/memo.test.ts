// Attacker tests for the exact-bytes memo tables (memo.ts): a remembered success never vouches for different bytes,
// a failure is never remembered, and validity times are checked on every call.
import { describe, expect, it } from 'vitest';
import { VerifyError, createBundleTrust, createBundleVerifier } from './index.js';
import { verifyLeafChain } from './chain.js';
import { BoundedCache, certSignedBy, clearMemo, parseCertificateCached } from './memo.js';
import { verifyScts } from './sct.js';
import { loadConformanceCases } from './testing/conformance-cases.js';
import type { ConformanceCase } from './testing/conformance-cases.js';
import type { Certificate } from './x509.js';

function leafDer(c: ConformanceCase): Buffer | undefined {
  const vm = (JSON.parse(c.bundleText) as { verificationMaterial?: Record<string, unknown> }).verificationMaterial ?? {};
  const single = vm['certificate'] as { rawBytes?: string } | undefined;
  const chain = vm['x509CertificateChain'] as { certificates?: Array<{ rawBytes?: string }> } | undefined;
  const b64 = single?.rawBytes ?? chain?.certificates?.[0]?.rawBytes;
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64');
}

// A passing keyless bundle from the public-good root (Fulcio leaf + embedded SCT).
const keyless = loadConformanceCases().find(
  (c) => c.expectOk && c.keyPem === undefined && c.trustedRoot === undefined && leafDer(c) !== undefined,
)!;

function verifyOnce(c: ConformanceCase, bundle: unknown = JSON.parse(c.bundleText)) {
  return createBundleVerifier(createBundleTrust(c.trustedRoot)).verify(
    bundle,
    { data: c.artifact },
    { kind: 'keyless', identity: c.identity, issuer: c.issuer },
  );
}

function issuerOf(leaf: Certificate): Certificate {
  const trust = createBundleTrust();
  return verifyLeafChain(leaf, [leaf.notBefore + 1000], trust).issuer;
}

describe('memoised certificate checks', () => {
  it('finds a keyless public-good case to attack', () => {
    expect(keyless).toBeDefined();
    expect(verifyOnce(keyless).ok).toBe(true);
  });

  it('refuses a leaf naming a cached intermediate when its own signature is bad', () => {
    clearMemo();
    expect(verifyOnce(keyless).ok).toBe(true); // (leaf, intermediate) is now remembered as verified
    const der = leafDer(keyless)!;
    const forged = Buffer.from(der);
    forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 0x01, forged.length - 1); // last octet of the signature value: same issuer name, key id, TBS
    const bundle = JSON.parse(keyless.bundleText) as { verificationMaterial: Record<string, unknown> };
    const vm = bundle.verificationMaterial;
    if (vm['certificate'] !== undefined) vm['certificate'] = { rawBytes: forged.toString('base64') };
    else vm['x509CertificateChain'] = { certificates: [{ rawBytes: forged.toString('base64') }] };
    const v = verifyOnce(keyless, bundle);
    expect(v.ok).toBe(false);
    // And again: the failure was not remembered as anything.
    expect(verifyOnce(keyless, bundle).ok).toBe(false);
    expect(verifyOnce(keyless).ok).toBe(true);
  });

  it('never remembers a failed signature check, and a success only for the exact bytes', () => {
    const leaf = parseCertificateCached(leafDer(keyless)!).cert;
    const issuer = issuerOf(leaf);
    const issuerKey = parseCertificateCached(issuer.der).key;
    clearMemo(); // issuerOf verified (leaf, issuer); start from nothing remembered
    // The forgery is checked first: its failure must not be stored, and must not poison the good pair either.
    // Same DER bytes as the cached good pair would be a hit, so a forgery must differ in DER — and then it misses.
    const tampered = parseCertificateCached(
      Buffer.concat([leaf.der.subarray(0, leaf.der.length - 1), Buffer.from([leaf.der[leaf.der.length - 1]! ^ 1])]),
    ).cert;
    expect(certSignedBy(tampered, issuer, issuerKey)).toBe(false);
    expect(certSignedBy(tampered, issuer, issuerKey)).toBe(false);
    expect(certSignedBy(leaf, issuer, issuerKey)).toBe(true);
    expect(certSignedBy(tampered, issuer, issuerKey)).toBe(false);
  });

  it('refuses a cached certificate outside its validity window', () => {
    clearMemo();
    const leaf = parseCertificateCached(leafDer(keyless)!).cert;
    const trust = createBundleTrust();
    expect(() => verifyLeafChain(leaf, [leaf.notBefore + 1000], trust)).not.toThrow(); // remembered now
    for (const t of [leaf.notAfter + 1000, leaf.notBefore - 1000]) {
      let err: unknown;
      try {
        verifyLeafChain(leaf, [t], trust);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VerifyError);
      expect((err as VerifyError).code).toBe('CERTIFICATE_EXPIRED');
    }
  });

  it('does not carry a verified SCT set over to a trusted root without that CT log', () => {
    clearMemo();
    const leaf = parseCertificateCached(leafDer(keyless)!).cert;
    const issuer = issuerOf(leaf);
    const full = createBundleTrust();
    expect(verifyScts(leaf, issuer, full)).toBeGreaterThan(0);
    const root = full.json as Record<string, unknown>;
    const noCt = createBundleTrust({ ...root, ctlogs: [] });
    expect(() => verifyScts(leaf, issuer, noCt)).toThrow(VerifyError);
    // A root with the same JSON is a different trust object: verified afresh, not looked up.
    expect(verifyScts(leaf, issuer, createBundleTrust(root))).toBeGreaterThan(0);
  });

  it('parses each distinct DER on its own: one changed byte is a different certificate', () => {
    clearMemo();
    const der = leafDer(keyless)!;
    const a = parseCertificateCached(der);
    expect(parseCertificateCached(Buffer.from(der))).toBe(a);
    const changed = Buffer.from(der);
    changed.writeUInt8(changed.readUInt8(changed.length - 1) ^ 0x01, changed.length - 1);
    expect(parseCertificateCached(changed)).not.toBe(a);
    expect(Buffer.from(parseCertificateCached(changed).cert.signature).equals(a.cert.signature)).toBe(false);
  });
});

describe('BoundedCache', () => {
  it('holds at most its limit, evicting the least recently used entry', () => {
    const c = new BoundedCache<number>(3);
    for (const k of ['a', 'b', 'c']) c.set(k, 1);
    expect(c.get('a')).toBe(1); // refresh a: b is now the oldest
    c.set('d', 1);
    expect(c.size).toBe(3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    for (let i = 0; i < 100; i++) c.set(`k${i}`, i);
    expect(c.size).toBe(3);
  });
});
