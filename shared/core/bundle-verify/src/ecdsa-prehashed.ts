// ECDSA verification over a caller-supplied digest. node:crypto always hashes its input, so a message signature
// can only be checked against an artifact given as `sha256:<hex>` with this code. Verification handles public data
// only, so constant-time arithmetic is not needed; correctness is pinned by tests against node:crypto signatures.
import type { KeyObject } from 'node:crypto';

interface Curve {
  p: bigint;
  n: bigint;
  b: bigint;
  gx: bigint;
  gy: bigint;
  bits: number;
}

const CURVES: Record<string, Curve> = {
  'P-256': {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
    bits: 256,
  },
  'P-384': {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
    bits: 384,
  },
};

export function curveSupported(name: string): boolean {
  return name in CURVES;
}

type Jac = [bigint, bigint, bigint]; // Jacobian (X, Y, Z); Z = 0 is the point at infinity

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function inv(a: bigint, m: bigint): bigint {
  // Extended Euclid; callers guarantee gcd(a, m) = 1 (m is prime and a is non-zero mod m).
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function dbl(P: Jac, p: bigint): Jac {
  const [X1, Y1, Z1] = P;
  if (Z1 === 0n || Y1 === 0n) return [0n, 1n, 0n];
  // dbl-2001-b for a = -3.
  const delta = mod(Z1 * Z1, p);
  const gamma = mod(Y1 * Y1, p);
  const beta = mod(X1 * gamma, p);
  const alpha = mod(3n * (X1 - delta) * (X1 + delta), p);
  const X3 = mod(alpha * alpha - 8n * beta, p);
  const Z3 = mod((Y1 + Z1) * (Y1 + Z1) - gamma - delta, p);
  const Y3 = mod(alpha * (4n * beta - X3) - 8n * gamma * gamma, p);
  return [X3, Y3, Z3];
}

function add(P: Jac, Q: Jac, p: bigint): Jac {
  const [X1, Y1, Z1] = P;
  const [X2, Y2, Z2] = Q;
  if (Z1 === 0n) return Q;
  if (Z2 === 0n) return P;
  // add-2007-bl.
  const Z1Z1 = mod(Z1 * Z1, p);
  const Z2Z2 = mod(Z2 * Z2, p);
  const U1 = mod(X1 * Z2Z2, p);
  const U2 = mod(X2 * Z1Z1, p);
  const S1 = mod(Y1 * Z2 * Z2Z2, p);
  const S2 = mod(Y2 * Z1 * Z1Z1, p);
  const H = mod(U2 - U1, p);
  const r = mod(2n * (S2 - S1), p);
  if (H === 0n) return r === 0n ? dbl(P, p) : [0n, 1n, 0n];
  const I = mod(4n * H * H, p);
  const J = mod(H * I, p);
  const V = mod(U1 * I, p);
  const X3 = mod(r * r - J - 2n * V, p);
  const Y3 = mod(r * (V - X3) - 2n * S1 * J, p);
  const Z3 = mod(((Z1 + Z2) * (Z1 + Z2) - Z1Z1 - Z2Z2) * H, p);
  return [X3, Y3, Z3];
}

/** u1·G + u2·Q (Shamir's trick), returned in affine x, or undefined for the point at infinity. */
function twoMulX(c: Curve, u1: bigint, u2: bigint, qx: bigint, qy: bigint): bigint | undefined {
  const G: Jac = [c.gx, c.gy, 1n];
  const Q: Jac = [qx, qy, 1n];
  const GQ = add(G, Q, c.p);
  let R: Jac = [0n, 1n, 0n];
  const top = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = top - 1; i >= 0; i--) {
    R = dbl(R, c.p);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 === 1n && b2 === 1n) R = add(R, GQ, c.p);
    else if (b1 === 1n) R = add(R, G, c.p);
    else if (b2 === 1n) R = add(R, Q, c.p);
  }
  if (R[2] === 0n) return undefined;
  const zi = inv(R[2], c.p);
  return mod(R[0] * zi * zi, c.p);
}

function readDerInt(sig: Uint8Array, pos: number): { v: bigint; next: number } | undefined {
  if (sig[pos] !== 0x02) return undefined;
  const len = sig[pos + 1];
  if (len === undefined || len === 0 || len > 0x7f) return undefined;
  const start = pos + 2;
  const end = start + len;
  if (end > sig.length) return undefined;
  // DER INTEGERs must be minimal and, for r and s, positive.
  if ((sig[start]! & 0x80) !== 0) return undefined;
  if (len > 1 && sig[start] === 0 && (sig[start + 1]! & 0x80) === 0) return undefined;
  let v = 0n;
  for (let i = start; i < end; i++) v = (v << 8n) | BigInt(sig[i]!);
  return { v, next: end };
}

function parseDerSignature(sig: Uint8Array): { r: bigint; s: bigint } | undefined {
  if (sig.length < 8 || sig[0] !== 0x30) return undefined;
  let pos = 2;
  let len = sig[1]!;
  if (len === 0x81) {
    len = sig[2]!;
    pos = 3;
    if (len < 0x80) return undefined;
  } else if (len > 0x80) {
    return undefined;
  }
  if (pos + len !== sig.length) return undefined;
  const r = readDerInt(sig, pos);
  if (r === undefined) return undefined;
  const s = readDerInt(sig, r.next);
  if (s === undefined || s.next !== sig.length) return undefined;
  return { r: r.v, s: s.v };
}

function b64urlToBigint(s: string): bigint {
  return BigInt(`0x${Buffer.from(s, 'base64url').toString('hex') || '0'}`);
}

/** Verifies a DER ECDSA signature over an already computed digest. Returns false for anything malformed. */
export function verifyEcdsaPrehashed(key: KeyObject, digest: Uint8Array, signature: Uint8Array): boolean {
  if (key.asymmetricKeyType !== 'ec') return false;
  const jwk = key.export({ format: 'jwk' });
  const curve = typeof jwk.crv === 'string' ? CURVES[jwk.crv] : undefined;
  if (curve === undefined || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return false;
  const qx = b64urlToBigint(jwk.x);
  const qy = b64urlToBigint(jwk.y);
  // node:crypto validates imported points, but keep the on-curve check local to this arithmetic.
  if (qx >= curve.p || qy >= curve.p) return false;
  if (mod(qy * qy - (qx * qx * qx - 3n * qx + curve.b), curve.p) !== 0n) return false;
  const parsed = parseDerSignature(signature);
  if (parsed === undefined) return false;
  const { r, s } = parsed;
  if (r <= 0n || r >= curve.n || s <= 0n || s >= curve.n) return false;
  // e = leftmost min(bits(n), bits(digest)) bits of the digest (SEC 1, 4.1.4 step 5).
  let e = BigInt(`0x${Buffer.from(digest).toString('hex') || '0'}`);
  const digestBits = digest.length * 8;
  if (digestBits > curve.bits) e >>= BigInt(digestBits - curve.bits);
  const w = inv(s, curve.n);
  const u1 = mod(e * w, curve.n);
  const u2 = mod(r * w, curve.n);
  const x = twoMulX(curve, u1, u2, qx, qy);
  if (x === undefined) return false;
  return mod(x, curve.n) === r;
}
