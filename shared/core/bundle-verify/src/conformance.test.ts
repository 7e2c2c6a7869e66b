import { describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier } from './index.js';
import type { BundleVerdict, SignerPolicy } from './index.js';
import { loadConformanceCases } from './testing/conformance-cases.js';
import type { ConformanceCase } from './testing/conformance-cases.js';

const cases = loadConformanceCases();

function verifyCase(c: ConformanceCase): BundleVerdict {
  let trust;
  try {
    trust = createBundleTrust(c.trustedRoot);
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code ?? 'ERROR', reason: (e as Error).message };
  }
  const policy: SignerPolicy =
    c.keyPem !== undefined
      ? { kind: 'key', keys: [{ publicKeyPem: c.keyPem }] }
      : { kind: 'keyless', identity: c.identity, issuer: c.issuer };
  return createBundleVerifier(trust).verify(c.bundleText, { data: c.artifact }, policy);
}

describe('sigstore-conformance bundle-verify', () => {
  it('has all 70 cases', () => {
    expect(cases).toHaveLength(70);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const verdict = verifyCase(c);
    if (c.expectOk) {
      expect(verdict, JSON.stringify(verdict)).toMatchObject({ ok: true });
    } else {
      expect(verdict.ok, JSON.stringify(verdict)).toBe(false);
      expect(typeof verdict.code).toBe('string');
      expect(verdict.reason).toBeTruthy();
    }
  });
});
