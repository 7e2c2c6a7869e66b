/**
 * One SSH signature blob (string sigtype || sigdata [|| sk flags, counter]) checked against one plain key: used for
 * the SSHSIG signature and for a certificate's CA signature.
 */
import { constants, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject, VerifyKeyObjectInput } from 'node:crypto';
import { SK_ECDSA, SK_ED25519 } from './keys.js';
import type { SshPublicKey } from './keys.js';
import { reject } from './reject.js';
import { skSignedData } from './sk.js';
import type { SkSignatureDetails } from './sk.js';
import { WireReader } from './wire.js';

export const MIN_RSA_BITS = 2048;
const RSA_SIG_HASH: Record<string, 'sha256' | 'sha512'> = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' };
const WEBAUTHN = 'webauthn-sk-ecdsa-sha2-nistp256@openssh.com';

export interface CheckedSignature {
  /** The signature algorithm name from the blob. */
  algorithm: string;
  /** Security keys only: what the authenticator reported. */
  sk?: SkSignatureDetails;
}

/** Left-pads a big-endian magnitude to `size` bytes, or null when it does not fit. */
function leftPad(magnitude: Buffer, size: number): Buffer | null {
  if (magnitude.length > size) return null;
  return Buffer.concat([Buffer.alloc(size - magnitude.length), magnitude]);
}

function safeVerify(algorithm: string | null, data: Buffer, key: KeyObject | VerifyKeyObjectInput, signature: Buffer): boolean {
  try {
    return cryptoVerify(algorithm, data, key, signature);
  } catch {
    // OpenSSL refusing a signature encoding (e.g. r = 0) is an invalid signature, not an error.
    return false;
  }
}

/** ECDSA (r, s) as SSH encodes it: string(mpint r || mpint s); verifies `data` with the curve's digest. */
function ecdsaVerify(key: SshPublicKey, encoded: Buffer, data: Buffer): boolean {
  const curve = key.curve!;
  const inner = new WireReader(encoded);
  const sr = inner.mpint('ecdsa r');
  const ss = inner.mpint('ecdsa s');
  inner.end('ecdsa r and s');
  const rPadded = leftPad(sr, curve.size);
  const sPadded = leftPad(ss, curve.size);
  if (!rPadded || !sPadded) reject('SSH_SIGNATURE_INVALID', 'ecdsa signature values are larger than the curve order');
  return safeVerify(curve.hash, data, { key: key.keyObject!, dsaEncoding: 'ieee-p1363' }, Buffer.concat([rPadded, sPadded]));
}

function checkSkSignature(key: SshPublicKey, sigType: string, r: WireReader, signedData: Buffer): CheckedSignature {
  if (sigType === WEBAUTHN) {
    // ssh-keygen accepts these, git never makes them: a browser lets any page of the key's web origin request an
    // assertion over any challenge, so accepting them would let that website (or a script injected into it) sign.
    reject(
      'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED',
      `${WEBAUTHN} signatures (made through a web browser's WebAuthn API) are not accepted; sign with ssh-keygen -Y sign (plain ${SK_ECDSA})`,
    );
  }
  if (sigType !== key.type)
    reject('SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', `signature algorithm ${JSON.stringify(sigType)} does not belong to a ${key.type} key`);
  const inner = r.string(`${key.type} signature`);
  const flags = r.bytes(1, 'sk flags')[0]!;
  const counter = r.u32('sk counter');
  r.end(`${key.type} signature`);
  const sk = { flags, counter };
  const tokenSigned = skSignedData(key.application!, sk, signedData);
  if (key.type === SK_ED25519) {
    if (inner.length !== 64) reject('SSH_SIGNATURE_INVALID', `sk-ed25519 signature is ${inner.length} bytes, not 64`);
    if (!safeVerify(null, tokenSigned, key.keyObject!, inner))
      reject('SSH_SIGNATURE_INVALID', `${key.type} signature does not verify (for application ${JSON.stringify(key.application)})`);
  } else if (!ecdsaVerify(key, inner, tokenSigned)) {
    reject('SSH_SIGNATURE_INVALID', `${key.type} signature does not verify (for application ${JSON.stringify(key.application)})`);
  }
  return { algorithm: sigType, sk };
}

/** Checks the signature blob against the (plain, supported) key; throws an SshReject when it does not verify. */
export function checkSignature(key: SshPublicKey, sigBlob: Buffer, signedData: Buffer): CheckedSignature {
  const keyObject = key.keyObject!;
  const r = new WireReader(sigBlob);
  const sigType = r.text('signature type');

  if (key.type === 'ssh-rsa') {
    if (sigType === 'ssh-rsa')
      reject(
        'SSH_RSA_SHA1_REJECTED',
        'legacy ssh-rsa signature (RSA with SHA-1) is not accepted; re-sign with rsa-sha2-512 or rsa-sha2-256',
      );
    const hash = RSA_SIG_HASH[sigType];
    if (!hash)
      reject(
        'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED',
        `RSA signature algorithm ${JSON.stringify(sigType)} is not accepted (rsa-sha2-512, rsa-sha2-256)`,
      );
    const sig = r.string('rsa signature');
    r.end('rsa signature');
    const modBytes = Math.ceil(key.bits / 8);
    // Some signers drop leading zero bytes; RSA verification needs the modulus length (OpenSSH pads the same way).
    const padded = leftPad(sig, modBytes);
    if (!padded) reject('SSH_SIGNATURE_INVALID', 'RSA signature is longer than the modulus');
    if (!safeVerify(hash, signedData, { key: keyObject, padding: constants.RSA_PKCS1_PADDING }, padded)) {
      reject('SSH_SIGNATURE_INVALID', `${sigType} signature does not verify`);
    }
    return { algorithm: sigType };
  }

  if (key.type === SK_ED25519 || key.type === SK_ECDSA) return checkSkSignature(key, sigType, r, signedData);

  if (sigType !== key.type)
    reject('SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', `signature algorithm ${JSON.stringify(sigType)} does not belong to a ${key.type} key`);

  if (key.type === 'ssh-ed25519') {
    const sig = r.string('ed25519 signature');
    r.end('ed25519 signature');
    if (sig.length !== 64) reject('SSH_SIGNATURE_INVALID', `ed25519 signature is ${sig.length} bytes, not 64`);
    if (!safeVerify(null, signedData, keyObject, sig)) reject('SSH_SIGNATURE_INVALID', 'ssh-ed25519 signature does not verify');
    return { algorithm: sigType };
  }

  const encoded = r.string('ecdsa signature');
  r.end('ecdsa signature');
  if (!ecdsaVerify(key, encoded, signedData)) reject('SSH_SIGNATURE_INVALID', `${key.type} signature does not verify`);
  return { algorithm: sigType };
}

/** Keys whose signatures this verifier refuses whatever they sign. */
export function refuseUnusableKey(key: SshPublicKey, role?: string): void {
  const prefix = role === undefined ? '' : `${role}: `;
  if (key.unsupported) reject(key.unsupported.code, `${prefix}${key.unsupported.reason}`);
  if (key.type === 'ssh-rsa' && key.bits < MIN_RSA_BITS)
    reject('SSH_KEY_TOO_WEAK', `${prefix}RSA key ${key.fingerprint} has ${key.bits} bits; at least ${MIN_RSA_BITS} are required`);
}
