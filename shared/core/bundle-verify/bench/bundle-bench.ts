// Throughput of fresh-bundle verification: ours vs @sigstore/verify's Verifier.verify on the same passing bundles.
//
//   npm run build -w @gitops-gate/bundle-verify && node shared/core/bundle-verify/bench/bundle-bench.ts [seconds]
//
// "Fresh" = every verification starts from a newly parsed bundle object (JSON.parse of the file text), so nothing
// derived from one bundle is reused for the next; only trust material (built once per trusted root) is shared.
// The three contenders run in interleaved rounds so that load from other processes on a shared machine hits them
// alike; the ratio is the number to read, absolute rates move with machine load.
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { createBundleTrust, createBundleVerifier, loadPublicGoodTrustedRoot } from '../dist/index.js';
import type { SignerPolicy } from '../dist/index.js';
import { loadConformanceCases } from '../dist/testing/conformance-cases.js';
import { createReferenceVerifier } from '../dist/testing/reference-verifier.js';

const seconds = Number(process.argv[2] ?? '6');
const cases = loadConformanceCases().filter((c) => c.expectOk);
const publicGood = loadPublicGoodTrustedRoot();
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

// Each contender: prepare() runs untimed (per bundle), the returned function is timed.
type Contender = { name: string; bundles: Array<() => () => void> };

const ours: Contender = {
  name: '@gitops-gate/bundle-verify verify()',
  bundles: cases.map((c) => {
    const verifier = createBundleVerifier(createBundleTrust(c.trustedRoot));
    const policy: SignerPolicy =
      c.keyPem !== undefined
        ? { kind: 'key', keys: [{ publicKeyPem: c.keyPem }] }
        : { kind: 'keyless', identity: c.identity, issuer: c.issuer };
    return () => () => {
      const v = verifier.verify(JSON.parse(c.bundleText), { data: c.artifact }, policy);
      if (!v.ok) throw new Error(`ours rejected ${c.name}: ${v.reason}`);
    };
  }),
};

// The reference as a caller must use it: bundleFromJSON + toSignedEntity + Verifier.verify + anchoring/DSSE fixes.
const theirsFull: Contender = {
  name: '@sigstore/verify pipeline (+fixes)',
  bundles: cases.map((c) => {
    const ref = createReferenceVerifier(
      c.trustedRoot ?? publicGood,
      c.keyPem !== undefined ? { publicKeyPem: c.keyPem } : { identity: c.identity, issuer: c.issuer },
    );
    return () => () => {
      const v = ref.verify(JSON.parse(c.bundleText), c.artifact);
      if (!v.ok) throw new Error(`reference rejected ${c.name}: ${v.reason}`);
    };
  }),
};

// Verifier.verify alone: bundle parsing and SignedEntity construction happen untimed.
const theirsVerify: Contender = {
  name: '@sigstore/verify Verifier.verify only',
  bundles: cases.map((c) => {
    const root = TrustedRoot.fromJSON(c.trustedRoot ?? publicGood);
    const trust =
      c.keyPem !== undefined
        ? toTrustMaterial(root, () => ({ publicKey: createPublicKey(c.keyPem!), validFor: () => true }))
        : toTrustMaterial(root);
    const verifier = new Verifier(trust);
    const policy =
      c.keyPem !== undefined ? undefined : { subjectAlternativeName: `^${escape(c.identity)}$`, extensions: { issuer: c.issuer } };
    return () => {
      const entity = toSignedEntity(bundleFromJSON(JSON.parse(c.bundleText)), c.artifact);
      return () => {
        verifier.verify(entity, policy);
      };
    };
  }),
};

const contenders = [ours, theirsFull, theirsVerify];
const totals = contenders.map(() => ({ n: 0, ns: 0n }));

// Warm-up doubles as a sanity check: every bundle must verify with every contender.
for (const c of contenders) for (const b of c.bundles) b()();

const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() < deadline) {
  contenders.forEach((c, i) => {
    const prepared = c.bundles.map((b) => b());
    const t0 = process.hrtime.bigint();
    for (const p of prepared) p();
    totals[i]!.ns += process.hrtime.bigint() - t0;
    totals[i]!.n += prepared.length;
  });
}

const rates = totals.map((t) => t.n / (Number(t.ns) / 1e9));
console.log(
  `${cases.length} passing conformance bundles (Rekor v1 + v2, message + DSSE, keyless + key), ~${seconds}s, node ${process.version}`,
);
contenders.forEach((c, i) => console.log(`${c.name.padEnd(40)} ${rates[i]!.toFixed(0).padStart(6)} verifications/s`));
console.log(`ratio vs @sigstore/verify pipeline:       ${(rates[0]! / rates[1]!).toFixed(1)}x`);
console.log(`ratio vs @sigstore/verify Verifier.verify: ${(rates[0]! / rates[2]!).toFixed(1)}x`);
