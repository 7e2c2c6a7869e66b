// Our verdicts against @sigstore/verify 4.1.3 (identity anchored, DSSE subject checked) on every conformance case
// and every mutation of the passing ones. The only allowed disagreement is the case the reference gets wrong.
import { describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier, loadPublicGoodTrustedRoot } from './index.js';
import type { SignerPolicy } from './index.js';
import { loadConformanceCases } from './testing/conformance-cases.js';
import type { ConformanceCase } from './testing/conformance-cases.js';
import { mutationsOf } from './testing/mutations.js';
import { createReferenceVerifier } from './testing/reference-verifier.js';

const cases = loadConformanceCases();
const publicGood = loadPublicGoodTrustedRoot();
// The reference treats a trust-root time range without a start as unbounded and accepts this case.
const REFERENCE_WRONG = new Set(['trust-root-tlog-missing-validity-start_fail']);

/**
 * Mutations the reference accepts and we reject, each for a stated reason. Only this direction is tolerated:
 * a bundle we accept and the reference rejects fails the test.
 */
function referenceAcceptsButShouldNot(c: ConformanceCase, mutation: string): boolean {
  // 0x30 -> 0x31 on the certificate's outer tag: the reference's ASN.1 reader ignores the tag, so a non-DER
  // certificate passes; its TBS is untouched, but we only accept well-formed DER.
  if (mutation === 'certificate@0') return true;
  // On proof-only (Rekor v2) entries nothing signs the top-level logIndex; the reference ignores it, we require
  // it to equal the index the inclusion proof was checked for (we report it as the signer's log index).
  if (mutation === 'log-index+1' || mutation === 'log-index-1') {
    const entry = (JSON.parse(c.bundleText) as { verificationMaterial: { tlogEntries: Array<Record<string, unknown>> } })
      .verificationMaterial.tlogEntries[0]!;
    return entry['inclusionPromise'] === undefined;
  }
  return false;
}

function ours(c: ConformanceCase): (bundle: unknown, artifact: Buffer) => boolean {
  let trust: ReturnType<typeof createBundleTrust>;
  try {
    trust = createBundleTrust(c.trustedRoot);
  } catch {
    return () => false;
  }
  const v = createBundleVerifier(trust);
  const policy: SignerPolicy =
    c.keyPem !== undefined
      ? { kind: 'key', keys: [{ publicKeyPem: c.keyPem }] }
      : { kind: 'keyless', identity: c.identity, issuer: c.issuer };
  return (bundle, artifact) => v.verify(bundle, { data: artifact }, policy).ok;
}

function theirs(c: ConformanceCase): (bundle: unknown, artifact: Buffer) => boolean {
  const ref = createReferenceVerifier(
    c.trustedRoot ?? publicGood,
    c.keyPem !== undefined ? { publicKeyPem: c.keyPem } : { identity: c.identity, issuer: c.issuer },
  );
  return (bundle, artifact) => ref.verify(bundle, artifact).ok;
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

describe('differential against @sigstore/verify', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s and its mutations', (_n, c) => {
    const a = ours(c);
    const b = theirs(c);
    const base = parseOrText(c.bundleText);
    const oursOk = a(base, c.artifact);
    const theirsOk = typeof base === 'string' ? false : b(base, c.artifact);
    expect(oursOk).toBe(c.expectOk);
    if (REFERENCE_WRONG.has(c.name)) {
      expect(theirsOk).toBe(true);
      return;
    }
    expect(theirsOk).toBe(oursOk);
    if (!c.expectOk) return;
    const disagreements = mutationsOf(c)
      .map((m) => ({ name: m.name, ours: a(m.bundle, m.artifact), theirs: b(m.bundle, m.artifact) }))
      .filter((r) => r.ours !== r.theirs && !(r.ours === false && referenceAcceptsButShouldNot(c, r.name)));
    expect(disagreements).toEqual([]);
  });
});
