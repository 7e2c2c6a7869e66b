/**
 * The parts of an X.509 certificate the chain and SCT checks need, read straight from the DER (so signatures are
 * verified over the exact bytes that were signed, never over a re-encoding).
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from '@sigstore/core';
import { DerError, TAG, children, ctx, decodeOid, expectTag, parseDer } from './der.js';
import type { Tlv } from './der.js';

export interface CertInfo {
  der: Buffer;
  /** @sigstore/core's view, for dates, extensions and constraints. */
  cert: X509Certificate;
  tbs: Tlv;
  signatureAlgorithm: string;
  signature: Buffer;
  /** Name TLVs as encoded. */
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  key: KeyObject;
}

export function parseCertificate(der: Buffer): CertInfo {
  const top = children(expectTag(parseDer(der), TAG.SEQUENCE, 'Certificate'));
  if (top.length !== 3) throw new DerError('Certificate must have three fields');
  const tbs = expectTag(top[0], TAG.SEQUENCE, 'tbsCertificate');
  const outerAlg = algorithm(top[1]!);
  const sigBits = expectTag(top[2], TAG.BIT_STRING, 'signatureValue');
  if (sigBits.content[0] !== 0) throw new DerError('certificate signature has unused bits');
  const fields = children(tbs);
  let i = fields[0]?.tag === ctx(0, true) ? 1 : 0;
  expectTag(fields[i++], TAG.INTEGER, 'serialNumber');
  const innerAlg = algorithm(fields[i++]!);
  // RFC 5280 §4.1.1.2: the algorithm outside the signed part must be the one inside it.
  if (!innerAlg.raw.equals(outerAlg.raw)) throw new DerError('certificate signature algorithm differs inside and outside the signed part');
  const issuer = expectTag(fields[i++], TAG.SEQUENCE, 'issuer').raw;
  expectTag(fields[i++], TAG.SEQUENCE, 'validity');
  const subject = expectTag(fields[i++], TAG.SEQUENCE, 'subject').raw;
  const spki = expectTag(fields[i], TAG.SEQUENCE, 'subjectPublicKeyInfo').raw;
  const cert = X509Certificate.parse(Buffer.from(der));
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new DerError('certificate public key cannot be parsed');
  }
  return { der, cert, tbs, signatureAlgorithm: outerAlg.oid, signature: sigBits.content.subarray(1), issuer, subject, spki, key };
}

function algorithm(tlv: Tlv): { oid: string; raw: Buffer } {
  const parts = children(expectTag(tlv, TAG.SEQUENCE, 'AlgorithmIdentifier'));
  return { oid: decodeOid(expectTag(parts[0], TAG.OID, 'algorithm')), raw: tlv.raw };
}

const SIGNATURE_ALGORITHMS: Record<string, { hash: string | null; keyType: string }> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', keyType: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', keyType: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', keyType: 'ec' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', keyType: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', keyType: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', keyType: 'rsa' },
  '1.3.101.112': { hash: null, keyType: 'ed25519' },
};

/** Whether `issuerKey` signed `cert`'s TBS bytes with the algorithm the certificate names. */
export function signedBy(cert: CertInfo, issuerKey: KeyObject): boolean {
  const alg = SIGNATURE_ALGORITHMS[cert.signatureAlgorithm];
  if (!alg || issuerKey.asymmetricKeyType !== alg.keyType) return false;
  try {
    return cryptoVerify(alg.hash, cert.tbs.raw, issuerKey, cert.signature);
  } catch {
    return false;
  }
}

/** The digest a log key signs with: ECDSA by curve size, RSA SHA-256, EdDSA none. */
export function logKeyHash(key: KeyObject): string | null {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
    case 'ed448':
      return null;
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : key.asymmetricKeyDetails?.namedCurve === 'secp521r1' ? 'sha512' : 'sha256';
    default:
      return 'sha256';
  }
}

export function verifyWithLogKey(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return cryptoVerify(logKeyHash(key), data, key, signature);
  } catch {
    return false;
  }
}

const OID_SCT = '1.3.6.1.4.1.11129.2.4.2';

/**
 * The TBS a CT log saw (RFC 6962 §3.2 precertificate): the certificate's TBS without the SCT extension, DER-encoded.
 * Rebuilt from the original bytes with only the lengths recomputed.
 */
export function precertificateTbs(cert: CertInfo): Buffer | undefined {
  const fields = children(cert.tbs);
  const extsWrapper = fields[fields.length - 1];
  if (extsWrapper?.tag !== ctx(3, true)) return undefined;
  const exts = children(expectTag(children(extsWrapper)[0], TAG.SEQUENCE, 'extensions'));
  const kept = exts.filter((e) => decodeOid(expectTag(children(e)[0], TAG.OID, 'extnID')) !== OID_SCT);
  if (kept.length === exts.length) return undefined;
  const newExts = encodeTlv(ctx(3, true), encodeTlv(TAG.SEQUENCE, Buffer.concat(kept.map((e) => e.raw))));
  return encodeTlv(TAG.SEQUENCE, Buffer.concat([...fields.slice(0, -1).map((f) => f.raw), newExts]));
}

function encodeTlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else if (len < 0x100) header = [tag, 0x81, len];
  else if (len < 0x10000) header = [tag, 0x82, len >> 8, len & 0xff];
  else header = [tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Buffer.from(header), content]);
}
