import { describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier } from './index.js';
import type { BundleVerifier, SignerPolicy } from './index.js';
import { loadConformanceCases } from './testing/conformance-cases.js';
import type { ConformanceCase } from './testing/conformance-cases.js';
import { mutationsOf, strictOnlyMutationsOf } from './testing/mutations.js';

const passing = loadConformanceCases().filter((c) => c.expectOk);

function setup(c: ConformanceCase): { verifier: BundleVerifier; policy: SignerPolicy } {
  return {
    verifier: createBundleVerifier(createBundleTrust(c.trustedRoot)),
    policy:
      c.keyPem !== undefined
        ? { kind: 'key', keys: [{ publicKeyPem: c.keyPem }] }
        : { kind: 'keyless', identity: c.identity, issuer: c.issuer },
  };
}

describe('every single-point corruption of a passing bundle is rejected', () => {
  it.each(passing.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const { verifier, policy } = setup(c);
    // The unmodified bundle passes, so each rejection below is caused by its mutation.
    expect(verifier.verify(JSON.parse(c.bundleText), { data: c.artifact }, policy).ok).toBe(true);
    const muts = [...mutationsOf(c), ...strictOnlyMutationsOf(c)];
    expect(muts.length).toBeGreaterThan(20);
    const accepted = muts.filter((m) => verifier.verify(m.bundle, { data: m.artifact }, policy).ok).map((m) => m.name);
    expect(accepted).toEqual([]);
  });

  it('covers every mutation class from the brief on some bundle', () => {
    const names = new Set(passing.flatMap((c) => mutationsOf(c).map((m) => m.name.replace(/@.*/, ''))));
    for (const k of [
      'signature',
      'certificate',
      'tlog-body',
      'inclusion-proof-hash',
      'integrated-time+1',
      'log-index+1',
      'dsse-payload',
      'artifact',
    ]) {
      expect(names).toContain(k);
    }
  });
});
