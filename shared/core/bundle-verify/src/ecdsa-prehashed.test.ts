import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyEcdsaPrehashed } from './ecdsa-prehashed.js';
import { verifyPrehashed } from './keys.js';

describe('ECDSA over a given digest agrees with node:crypto', () => {
  for (const [curve, hash] of [
    ['P-256', 'sha256'],
    ['P-384', 'sha384'],
    ['P-384', 'sha256'],
    ['P-256', 'sha512'],
  ] as const) {
    it(`${curve} with ${hash}`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const other = generateKeyPairSync('ec', { namedCurve: curve }).publicKey;
      for (let i = 0; i < 12; i++) {
        const msg = randomBytes(1 + i * 7);
        const sig = sign(hash, msg, privateKey);
        const digest = createHash(hash).update(msg).digest();
        expect(verifyEcdsaPrehashed(publicKey, digest, sig)).toBe(true);
        const badDigest = Buffer.from(digest);
        badDigest[i % badDigest.length]! ^= 1;
        expect(verifyEcdsaPrehashed(publicKey, badDigest, sig)).toBe(false);
        const badSig = Buffer.from(sig);
        badSig[badSig.length - 1 - (i % 8)]! ^= 0x10;
        expect(verifyEcdsaPrehashed(publicKey, digest, badSig)).toBe(false);
        expect(verifyEcdsaPrehashed(other, digest, sig)).toBe(false);
      }
    });
  }

  it('rejects out-of-range and malformed signatures', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const digest = randomBytes(32);
    const n = Buffer.from('00ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
    const int = (b: Buffer) => Buffer.concat([Buffer.from([0x02, b.length]), b]);
    const seq = (...parts: Buffer[]) => {
      const body = Buffer.concat(parts);
      return Buffer.concat([Buffer.from([0x30, body.length]), body]);
    };
    const one = Buffer.from([1]);
    for (const sig of [
      seq(int(Buffer.from([0])), int(one)), // r = 0
      seq(int(one), int(Buffer.from([0]))), // s = 0
      seq(int(n), int(one)), // r = n
      seq(int(one), int(n)), // s = n
      seq(int(Buffer.from([0x80])), int(one)), // negative r
      seq(int(Buffer.from([0, 1])), int(one)), // non-minimal r
      Buffer.alloc(0),
      Buffer.from([0x30, 0x00]),
      randomBytes(70),
    ]) {
      expect(verifyEcdsaPrehashed(publicKey, digest, sig)).toBe(false);
    }
  });

  it('RSA PKCS#1 v1.5 and Ed25519 through verifyPrehashed', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const msg = randomBytes(100);
    const sig = sign('sha256', msg, privateKey);
    const digest = createHash('sha256').update(msg).digest();
    expect(verifyPrehashed(publicKey, 'sha256', digest, sig)).toBe(true);
    const bad = Buffer.from(digest);
    bad[0]! ^= 1;
    expect(verifyPrehashed(publicKey, 'sha256', bad, sig)).toBe(false);
    expect(verifyPrehashed(publicKey, 'sha384', createHash('sha384').update(msg).digest(), sig)).toBe(false);
    const ed = generateKeyPairSync('ed25519');
    // Pure Ed25519 cannot be checked against a digest: always false.
    expect(verifyPrehashed(ed.publicKey, 'sha256', digest, sign(null, digest, ed.privateKey))).toBe(false);
  });
});
