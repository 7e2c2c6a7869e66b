// RFC 3161 signed timestamps over the bundle signature, checked against the trusted root's timestamp authorities.
// Certificates embedded in the token are ignored: only the trusted root decides who is a TSA.
import { TAG, children, expectTag, readOid, readRoot, readSmallInt, readTime, value } from './der.js';
import type { DerNode } from './der.js';
import { VerifyError, reject } from './errors.js';
import { digest, familyOf, verifySignature } from './keys.js';
import type { HashName } from './keys.js';
import { validAt } from './x509.js';
import type { BundleTrust } from './trust.js';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TST_INFO = '1.2.840.113549.1.9.16.1.4';
const OID_ATTR_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_ATTR_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';

const HASH_OIDS: Record<string, HashName> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

// SignerInfo.signatureAlgorithm: either a combined algorithm (whose hash must equal digestAlgorithm) or a bare
// key algorithm, in which case digestAlgorithm names the hash.
const SIGNER_SIG_ALGS: Record<string, { family: 'ec' | 'rsa' | 'ed25519'; hash?: HashName }> = {
  '1.2.840.10045.4.3.2': { family: 'ec', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { family: 'ec', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { family: 'ec', hash: 'sha512' },
  '1.2.840.10045.2.1': { family: 'ec' },
  '1.2.840.113549.1.1.11': { family: 'rsa', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { family: 'rsa', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { family: 'rsa', hash: 'sha512' },
  '1.2.840.113549.1.1.1': { family: 'rsa' },
};

function bad(reason: string): never {
  throw new VerifyError('TIMESTAMP_INVALID', reason);
}

interface ParsedTimestamp {
  genTime: number;
  imprintHash: HashName;
  imprint: Uint8Array;
  eContent: Uint8Array;
  digestHash: HashName;
  sigFamily: 'ec' | 'rsa' | 'ed25519';
  signedAttrs: Buffer;
  messageDigest: Uint8Array;
  signature: Uint8Array;
  sid: { issuer: Uint8Array; serial: Uint8Array } | { keyId: Uint8Array };
}

function algOid(buf: Uint8Array, node: DerNode | undefined, what: string): string {
  const parts = children(buf, expectTag(node, TAG.SEQUENCE, what));
  return readOid(buf, expectTag(parts[0], TAG.OID, what));
}

function parseTimestamp(der: Uint8Array): ParsedTimestamp {
  // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken ContentInfo OPTIONAL }
  const resp = children(der, expectTag(readRoot(der), TAG.SEQUENCE, 'TimeStampResp'));
  const status = children(der, expectTag(resp[0], TAG.SEQUENCE, 'PKIStatusInfo'));
  const code = readSmallInt(der, expectTag(status[0], TAG.INTEGER, 'PKIStatus'));
  if (code !== 0 && code !== 1) bad('timestamp response status is not granted');
  if (resp.length !== 2) bad('timestamp response has no token');
  const ci = children(der, expectTag(resp[1], TAG.SEQUENCE, 'ContentInfo'));
  if (readOid(der, expectTag(ci[0], TAG.OID, 'contentType')) !== OID_SIGNED_DATA) bad('timestamp token is not SignedData');
  const sdWrap = children(der, expectTag(ci[1], 0xa0, 'content'));
  const sd = children(der, expectTag(sdWrap[0], TAG.SEQUENCE, 'SignedData'));
  const encap = children(der, expectTag(sd[2], TAG.SEQUENCE, 'encapContentInfo'));
  if (readOid(der, expectTag(encap[0], TAG.OID, 'eContentType')) !== OID_TST_INFO) bad('timestamp content is not TSTInfo');
  const eWrap = children(der, expectTag(encap[1], 0xa0, 'eContent'));
  const eContent = value(der, expectTag(eWrap[0], TAG.OCTET_STRING, 'eContent'));
  const signerInfos = children(der, expectTag(sd[sd.length - 1], TAG.SET, 'signerInfos'));
  if (signerInfos.length !== 1) bad('timestamp must have exactly one signer');
  const si = children(der, expectTag(signerInfos[0], TAG.SEQUENCE, 'SignerInfo'));

  let sid: ParsedTimestamp['sid'];
  const sidNode = si[1];
  if (sidNode?.tag === TAG.SEQUENCE) {
    const ias = children(der, sidNode);
    sid = {
      issuer: der.subarray(expectTag(ias[0], TAG.SEQUENCE, 'issuer').start, ias[0]!.end),
      serial: value(der, expectTag(ias[1], TAG.INTEGER, 'serialNumber')),
    };
  } else if (sidNode?.tag === 0x80) {
    sid = { keyId: value(der, sidNode) };
  } else {
    return bad('unsupported signer identifier');
  }
  const digestHash = HASH_OIDS[algOid(der, si[2], 'digestAlgorithm')];
  if (digestHash === undefined) bad('unsupported timestamp digest algorithm');
  const attrsNode = expectTag(si[3], 0xa0, 'signedAttrs');
  const sigAlg = SIGNER_SIG_ALGS[algOid(der, si[4], 'signatureAlgorithm')];
  if (sigAlg === undefined) bad('unsupported timestamp signature algorithm');
  if (sigAlg.hash !== undefined && sigAlg.hash !== digestHash) bad('timestamp signature and digest algorithms disagree');
  const signature = value(der, expectTag(si[5], TAG.OCTET_STRING, 'signature'));

  let contentTypeOk = false;
  let messageDigest: Uint8Array | undefined;
  const seen = new Set<string>();
  for (const attr of children(der, attrsNode)) {
    const parts = children(der, expectTag(attr, TAG.SEQUENCE, 'Attribute'));
    const oid = readOid(der, expectTag(parts[0], TAG.OID, 'attrType'));
    if (seen.has(oid)) bad('duplicate signed attribute');
    seen.add(oid);
    const values = children(der, expectTag(parts[1], TAG.SET, 'attrValues'));
    if (oid === OID_ATTR_CONTENT_TYPE) {
      if (values.length !== 1 || readOid(der, values[0]!) !== OID_TST_INFO) bad('signed content type is not TSTInfo');
      contentTypeOk = true;
    } else if (oid === OID_ATTR_MESSAGE_DIGEST) {
      if (values.length !== 1) bad('bad message digest attribute');
      messageDigest = value(der, expectTag(values[0], TAG.OCTET_STRING, 'messageDigest'));
    }
  }
  if (!contentTypeOk || messageDigest === undefined) bad('timestamp lacks required signed attributes');
  // The signature covers the attributes as a SET OF (tag 0x31), not as the [0] IMPLICIT field they are stored in.
  const signedAttrs = Buffer.from(der.subarray(attrsNode.start, attrsNode.end));
  signedAttrs[0] = 0x31;

  // TSTInfo ::= SEQUENCE { version, policy, messageImprint, serialNumber, genTime, ... }
  const tst = children(eContent, expectTag(readRoot(eContent), TAG.SEQUENCE, 'TSTInfo'));
  if (readSmallInt(eContent, expectTag(tst[0], TAG.INTEGER, 'TSTInfo.version')) !== 1) bad('unsupported TSTInfo version');
  const mi = children(eContent, expectTag(tst[2], TAG.SEQUENCE, 'messageImprint'));
  const imprintHash = HASH_OIDS[algOid(eContent, mi[0], 'messageImprint.hashAlgorithm')];
  if (imprintHash === undefined) bad('unsupported message imprint algorithm');
  const imprint = value(eContent, expectTag(mi[1], TAG.OCTET_STRING, 'hashedMessage'));
  const genTime = readTime(eContent, expectTag(tst[4], TAG.GENERALIZED_TIME, 'genTime'));

  return { genTime, imprintHash, imprint, eContent, digestHash, sigFamily: sigAlg.family, signedAttrs, messageDigest, signature, sid };
}

/** Verifies one timestamp over `signature` and returns its time (ms); throws VerifyError otherwise. */
export function verifyTimestamp(der: Uint8Array, signature: Uint8Array, trust: BundleTrust): number {
  let ts: ParsedTimestamp;
  try {
    ts = parseTimestamp(der);
  } catch (e) {
    if (e instanceof VerifyError && e.code === 'TIMESTAMP_INVALID') throw e;
    return bad(`malformed timestamp: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!digest(ts.imprintHash, signature).equals(ts.imprint)) {
    reject('TIMESTAMP_MISMATCH', 'timestamp does not cover this bundle signature');
  }
  if (!digest(ts.digestHash, ts.eContent).equals(ts.messageDigest)) bad('signed attributes do not match TSTInfo');
  const t = ts.genTime;
  for (const tsa of trust.timestampAuthorities) {
    if (tsa.unusable !== undefined || t < tsa.start || t > tsa.end) continue;
    const leaf = tsa.certs[0]!;
    const sid = ts.sid;
    const matches =
      'keyId' in sid
        ? leaf.subjectKeyId !== undefined && Buffer.from(leaf.subjectKeyId).equals(sid.keyId)
        : Buffer.from(leaf.issuer).equals(sid.issuer) && Buffer.from(leaf.serial).equals(sid.serial);
    if (!matches) continue;
    if (!tsa.certs.every((c) => validAt(c, t))) continue;
    if (familyOf(tsa.leafKey) !== ts.sigFamily) continue;
    const hash = ts.sigFamily === 'ed25519' ? null : ts.digestHash;
    if (verifySignature(tsa.leafKey, hash, ts.signedAttrs, ts.signature)) return t;
  }
  return reject('TIMESTAMP_UNTRUSTED', 'timestamp is not signed by a trusted timestamp authority valid at its time');
}
