// Public keys and signature checks on node:crypto. Every helper answers false instead of throwing on malformed
// signatures, and refuses algorithm/key-type combinations that do not belong together.
import { constants, createHash, createPublicKey, publicDecrypt, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { reject } from './errors.js';
import { verifyEcdsaPrehashed } from './ecdsa-prehashed.js';

export type HashName = 'sha256' | 'sha384' | 'sha512';

export function publicKeyFromSpki(spki: Uint8Array, what: string): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength), format: 'der', type: 'spki' });
  } catch {
    return reject('KEY_INVALID', `${what} is not a usable public key`);
  }
}

export function publicKeyFromPkcs1(der: Uint8Array, what: string): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(der.buffer, der.byteOffset, der.byteLength), format: 'der', type: 'pkcs1' });
  } catch {
    return reject('KEY_INVALID', `${what} is not a usable public key`);
  }
}

export type KeyKind = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'rsa' | 'ed25519' | 'unsupported';

const kindCache = new WeakMap<KeyObject, KeyKind>();

export function keyKind(key: KeyObject): KeyKind {
  const hit = kindCache.get(key);
  if (hit !== undefined) return hit;
  let kind: KeyKind = 'unsupported';
  if (key.asymmetricKeyType === 'ed25519') kind = 'ed25519';
  else if (key.asymmetricKeyType === 'rsa') {
    // Keys below 2048 bits are not accepted for anything.
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    kind = bits >= 2048 ? 'rsa' : 'unsupported';
  } else if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') kind = 'ec-p256';
    else if (curve === 'secp384r1') kind = 'ec-p384';
    else if (curve === 'secp521r1') kind = 'ec-p521';
  }
  kindCache.set(key, kind);
  return kind;
}

/** The hash a key type conventionally signs with when nothing else says (DSSE PAE, checkpoints, SETs). */
export function defaultHash(key: KeyObject): HashName | null {
  switch (keyKind(key)) {
    case 'ec-p256':
    case 'rsa':
      return 'sha256';
    case 'ec-p384':
      return 'sha384';
    case 'ec-p521':
      return 'sha512';
    case 'ed25519':
      return null;
    default:
      return reject('KEY_UNSUPPORTED', 'unsupported public key type');
  }
}

/** Verifies `sig` over `data`; `hash` null means a pure signature scheme (Ed25519). */
export function verifySignature(key: KeyObject, hash: HashName | null, data: Uint8Array, sig: Uint8Array): boolean {
  const kind = keyKind(key);
  if (kind === 'unsupported') return false;
  // Ed25519 has no separate hash; every other type needs one. A mismatch is a malformed request, not a pass.
  if ((kind === 'ed25519') !== (hash === null)) return false;
  try {
    return cryptoVerify(hash, data, key, sig);
  } catch {
    return false;
  }
}

const DIGEST_INFO_PREFIX: Record<HashName, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

const DIGEST_LEN: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** Verifies a signature made over a digest we only know (artifact given as `sha256:<hex>`). */
export function verifyPrehashed(key: KeyObject, hash: HashName, digest: Uint8Array, sig: Uint8Array): boolean {
  if (digest.length !== DIGEST_LEN[hash]) return false;
  const kind = keyKind(key);
  if (kind === 'ec-p256' || kind === 'ec-p384') return verifyEcdsaPrehashed(key, digest, sig);
  if (kind === 'rsa') {
    try {
      // PKCS#1 v1.5: the recovered block must be exactly DigestInfo(hash, digest); OpenSSL checks the padding.
      const recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, sig);
      return recovered.equals(Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]));
    } catch {
      return false;
    }
  }
  return false;
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function digest(hash: HashName, data: Uint8Array): Buffer {
  return createHash(hash).update(data).digest();
}

/** Signature AlgorithmIdentifier OIDs we accept in certificates and timestamps, with the key type they need. */
export const SIG_ALGS: Record<string, { hash: HashName | null; family: 'ec' | 'rsa' | 'ed25519' }> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', family: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', family: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', family: 'ec' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', family: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', family: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', family: 'rsa' },
  '1.3.101.112': { hash: null, family: 'ed25519' },
};

export function familyOf(key: KeyObject): 'ec' | 'rsa' | 'ed25519' | undefined {
  const k = keyKind(key);
  if (k === 'ec-p256' || k === 'ec-p384' || k === 'ec-p521') return 'ec';
  if (k === 'rsa') return 'rsa';
  if (k === 'ed25519') return 'ed25519';
  return undefined;
}

/** Checks a signature whose algorithm is named by an X.509/CMS AlgorithmIdentifier OID. */
export function verifyWithAlgOid(key: KeyObject, algOid: string, data: Uint8Array, sig: Uint8Array): boolean {
  const alg = SIG_ALGS[algOid];
  if (alg === undefined || familyOf(key) !== alg.family) return false;
  return verifySignature(key, alg.hash, data, sig);
}
