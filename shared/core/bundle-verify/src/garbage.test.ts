// verify() never throws and never passes malformed input: random JSON, truncated bundles, fields replaced by
// values of the wrong type or removed, hostile objects, garbage artifacts and policies.
import { describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier } from './index.js';
import type { Artifact, BundleVerdict, SignerPolicy } from './index.js';
import { loadConformanceCases } from './testing/conformance-cases.js';

const all = loadConformanceCases();
const byName = new Map(all.map((c) => [c.name, c]));
const REPRESENTATIVE = [
  'happy-path-v0.1',
  'happy-path-intoto-in-dsse-v3',
  'rekor2-happy-path',
  'managed-key-happy-path',
  'intoto-with-custom-trust-root',
  'rekor2-dsse-happy-path',
];

function expectRejected(v: BundleVerdict): void {
  expect(v.ok).toBe(false);
  expect(typeof v.code).toBe('string');
  expect(typeof v.reason).toBe('string');
}

function setup(name: string) {
  const c = byName.get(name)!;
  const verifier = createBundleVerifier(createBundleTrust(c.trustedRoot));
  const policy: SignerPolicy =
    c.keyPem !== undefined
      ? { kind: 'key', keys: [{ publicKeyPem: c.keyPem }] }
      : { kind: 'keyless', identity: c.identity, issuer: c.issuer };
  return { c, verifier, policy, artifact: { data: c.artifact } as Artifact };
}

// Deterministic PRNG so a failure is reproducible.
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomJson(rnd: () => number, depth: number): unknown {
  const r = rnd();
  const keys = [
    'mediaType',
    'verificationMaterial',
    'messageSignature',
    'dsseEnvelope',
    'tlogEntries',
    'certificate',
    'rawBytes',
    'x',
    'signature',
  ];
  if (depth <= 0 || r < 0.3) {
    const leaves: unknown[] = [
      null,
      true,
      false,
      0,
      -1,
      1e300,
      '',
      'AAAA',
      'application/vnd.dev.sigstore.bundle.v0.3+json',
      '\u0000',
      rnd() * 1e9,
    ];
    return leaves[Math.floor(rnd() * leaves.length)];
  }
  if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomJson(rnd, depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(rnd() * 5); i++) o[keys[Math.floor(rnd() * keys.length)]!] = randomJson(rnd, depth - 1);
  return o;
}

type Path = Array<string | number>;
function paths(v: unknown, p: Path = [], out: Path[] = []): Path[] {
  out.push(p);
  if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], [...p, Array.isArray(v) ? Number(k) : k], out);
  }
  return out;
}

// Field edits that leave a bundle valid, audited one by one: unsigned hints, a second (still verified) time
// source removed, and equivalent encodings of empty proofs / zero indexes.
const BENIGN = [
  /^dsseEnvelope\.signatures\.N\.keyid$/,
  /^verificationMaterial\.publicKey(\.hint)?$/,
  /^verificationMaterial\.timestampVerificationData(\.rfc3161Timestamps(\.N)?)?$/,
  /^verificationMaterial\.tlogEntries\.N\.inclusionProof$/,
  /^verificationMaterial\.tlogEntries\.N\.inclusionProof\.hashes$/,
  /^verificationMaterial\.tlogEntries\.N\.inclusionProof\.logIndex$/,
];

describe('garbage never throws and never verifies', () => {
  const { verifier, policy, artifact } = setup('happy-path-v0.3');

  it('random JSON values', () => {
    const rnd = mulberry32(42);
    for (let i = 0; i < 2000; i++) expectRejected(verifier.verify(randomJson(rnd, 5), artifact, policy));
  });

  it.each(REPRESENTATIVE)('%s truncated at every length step (text and parsed prefixes)', (name) => {
    const { c, verifier: v, policy: p, artifact: a } = setup(name);
    for (let n = 0; n < c.bundleText.length; n += 37) {
      const text = c.bundleText.slice(0, n);
      expectRejected(v.verify(text, a, p));
      expectRejected(v.verify(Buffer.from(text), a, p));
    }
  });

  it.each(REPRESENTATIVE)('%s with each field replaced by a wrong value or removed', (name) => {
    const { c, verifier: v, policy: p, artifact: a } = setup(name);
    const replacements: unknown[] = [null, 0, -1, '', 'x', [], {}, true, 'AAAA', 1e21, 'DELETE'];
    let checked = 0;
    for (const path of paths(JSON.parse(c.bundleText))) {
      for (const r of replacements) {
        if (path.length === 0 && r === 'DELETE') continue;
        const b = JSON.parse(c.bundleText) as Record<string | number, unknown>;
        let target: unknown = b;
        let mutated: unknown = b;
        if (path.length === 0) mutated = r;
        else {
          for (const k of path.slice(0, -1)) target = (target as Record<string | number, unknown>)[k];
          const last = path[path.length - 1]!;
          if (r === 'DELETE') {
            if (Array.isArray(target)) target.splice(last as number, 1);
            else delete (target as Record<string | number, unknown>)[last];
          } else (target as Record<string | number, unknown>)[last] = r;
        }
        const verdict = v.verify(mutated, a, p);
        checked++;
        if (verdict.ok) {
          const key = path.join('.').replace(/\.\d+/g, '.N');
          expect(
            BENIGN.some((re) => re.test(key)),
            `${key} := ${JSON.stringify(r)} still verifies`,
          ).toBe(true);
        } else {
          expect(typeof verdict.code).toBe('string');
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('hostile objects', () => {
    const throwingGetter = Object.defineProperty({}, 'mediaType', {
      get() {
        throw new Error('boom');
      },
    });
    const proxy = new Proxy(
      {},
      {
        get() {
          throw new Error('proxy');
        },
        has() {
          throw new Error('proxy');
        },
      },
    );
    const weird = {
      toString: () => {
        throw new Error('x');
      },
    };
    for (const b of [
      undefined,
      null,
      42,
      Symbol('s'),
      () => 1,
      throwingGetter,
      proxy,
      weird,
      [],
      '{"a":',
      '[]',
      `${'['.repeat(20000)}${']'.repeat(20000)}`,
    ]) {
      expectRejected(verifier.verify(b, artifact, policy));
    }
  });

  it('garbage artifacts and policies', () => {
    const good = JSON.parse(byName.get('happy-path-v0.3')!.bundleText) as unknown;
    const artifacts: unknown[] = [
      null,
      undefined,
      'a.txt',
      { data: 'string' },
      { digest: { algorithm: 'md5', hex: '00' } },
      { digest: { algorithm: 'sha256', hex: 'zz'.repeat(32) } },
      { digest: null },
      {},
    ];
    for (const a of artifacts) expectRejected(verifier.verify(good, a as Artifact, policy));
    const policies: unknown[] = [
      null,
      undefined,
      {},
      { kind: 'other' },
      { kind: 'keyless', issuer: 5 },
      { kind: 'keyless', identity: 5, issuer: 'x' },
      { kind: 'key', keys: 'pem' },
      { kind: 'key', keys: [{ publicKeyPem: 7 }] },
    ];
    for (const p of policies) expectRejected(verifier.verify(good, artifact, p as SignerPolicy));
  });

  it('a throwing clock is a rejection', () => {
    const c = byName.get('happy-path-v0.3')!;
    const v = createBundleVerifier(createBundleTrust(), {
      now: () => {
        throw new Error('clock');
      },
    });
    expectRejected(v.verify(c.bundleText, { data: c.artifact }, policy));
    const nan = createBundleVerifier(createBundleTrust(), { now: () => new Date(Number.NaN) });
    expectRejected(nan.verify(c.bundleText, { data: c.artifact }, policy));
  });
});
