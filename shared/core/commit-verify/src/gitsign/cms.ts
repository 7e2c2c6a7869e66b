/**
 * Parses gitsign's "SIGNED MESSAGE": a detached CMS SignedData (RFC 5652) with one signer, signed attributes and the
 * Fulcio leaf certificate. Only structure is checked here; cryptographic checks happen in the verifier.
 */
import { DerError, TAG, isDerError, children, ctx, decodeOid, expectTag, parseDer } from './der-view.js';
import type { Tlv } from './der-view.js';

export const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  sha256: '2.16.840.1.101.3.4.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  rekorTlogEntry: '1.3.6.1.4.1.57264.3.1',
} as const;

export class CmsError extends Error {
  constructor(
    readonly code: 'GITSIGN_SIGNATURE_MALFORMED' | 'GITSIGN_CMS_UNSUPPORTED' | 'GITSIGN_TLOG_ENTRY_UNSUPPORTED',
    message: string,
  ) {
    super(message);
  }
}

export interface CmsAttribute {
  oid: string;
  values: Tlv[];
}

export interface GitsignCms {
  /** Raw DER of each certificate in the SignedData certificate set. */
  certificates: Buffer[];
  /** SignerIdentifier: issuer Name (whole DER element) + serial INTEGER content octets, or a subject key identifier. */
  sid: { issuer: Buffer; serial: Buffer } | { subjectKeyId: Buffer };
  digestAlgorithm: string;
  signatureAlgorithm: string;
  /** The signed attributes re-tagged as SET OF (0x31): the exact bytes the signature (and gitsign's Rekor entry) covers. */
  signedAttrsDer: Buffer;
  signedAttrs: CmsAttribute[];
  signature: Buffer;
  unsignedAttrs: CmsAttribute[];
}

const MAX_SIGNATURE_TEXT = 256 * 1024;
const PEM_LABELS = new Set(['SIGNED MESSAGE', 'PKCS7', 'CMS']);

/** Strict PEM → DER: one block, known label, base64 lines only, canonical base64 (so no two texts decode to the same bytes). */
export function decodeSignaturePem(text: string): Buffer {
  if (typeof text !== 'string') throw new CmsError('GITSIGN_SIGNATURE_MALFORMED', 'signature is not text');
  if (text.length > MAX_SIGNATURE_TEXT) throw new CmsError('GITSIGN_SIGNATURE_MALFORMED', 'signature text is too large');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const begin = /^-----BEGIN ([A-Z0-9 ]+)-----$/.exec(lines[0] ?? '');
  const end = /^-----END ([A-Z0-9 ]+)-----$/.exec(lines[lines.length - 1] ?? '');
  if (!begin || !end || lines.length < 3 || begin[1] !== end[1] || !PEM_LABELS.has(begin[1] ?? '')) {
    throw new CmsError('GITSIGN_SIGNATURE_MALFORMED', 'signature is not a PEM "SIGNED MESSAGE" block');
  }
  const body = lines.slice(1, -1);
  if (!body.every((l) => /^[A-Za-z0-9+/=]+$/.test(l)))
    throw new CmsError('GITSIGN_SIGNATURE_MALFORMED', 'signature PEM body is not base64');
  const b64 = body.join('');
  const der = Buffer.from(b64, 'base64');
  if (der.toString('base64') !== b64) throw new CmsError('GITSIGN_SIGNATURE_MALFORMED', 'signature PEM body is not canonical base64');
  return der;
}

export function parseGitsignCms(der: Buffer): GitsignCms {
  try {
    return parseSignedData(der);
  } catch (err) {
    if (isDerError(err)) throw new CmsError('GITSIGN_SIGNATURE_MALFORMED', `CMS structure is malformed: ${err.message}`);
    throw err;
  }
}

function parseSignedData(der: Buffer): GitsignCms {
  const contentInfo = children(expectTag(parseDer(der), TAG.SEQUENCE, 'ContentInfo'));
  if (contentInfo.length !== 2) throw new DerError('ContentInfo must have two fields');
  if (decodeOid(expectTag(contentInfo[0], TAG.OID, 'contentType')) !== OID.signedData) {
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', 'CMS content is not SignedData');
  }
  const explicit = children(expectTag(contentInfo[1], ctx(0, true), 'ContentInfo.content'));
  if (explicit.length !== 1) throw new DerError('ContentInfo.content must hold one element');
  const sd = children(expectTag(explicit[0], TAG.SEQUENCE, 'SignedData'));

  let i = 0;
  const version = smallInteger(expectTag(sd[i++], TAG.INTEGER, 'SignedData.version'));
  const digestAlgorithms = children(expectTag(sd[i++], TAG.SET, 'SignedData.digestAlgorithms')).map((a) =>
    algorithmOid(a, 'digestAlgorithms'),
  );
  const encap = children(expectTag(sd[i++], TAG.SEQUENCE, 'EncapsulatedContentInfo'));
  if (decodeOid(expectTag(encap[0], TAG.OID, 'eContentType')) !== OID.data) {
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', 'encapsulated content type is not id-data');
  }
  // Attached content would be a second, unverified copy of the commit: gitsign signs detached, so insist on it.
  if (encap.length !== 1)
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', 'CMS carries attached content; gitsign commit signatures are detached');

  const certificates: Buffer[] = [];
  if (sd[i]?.tag === ctx(0, true)) {
    for (const c of children(sd[i++]!)) {
      // Only plain X.509 certificates (SEQUENCE); attribute/other certificate formats are irrelevant and ignored.
      if (c.tag === TAG.SEQUENCE) certificates.push(c.raw);
    }
  }
  if (sd[i]?.tag === ctx(1, true)) i++; // CRLs: revocation is not part of Sigstore's model (short-lived certs).
  const signerInfos = children(expectTag(sd[i++], TAG.SET, 'SignedData.signerInfos'));
  if (i !== sd.length) throw new DerError('unexpected fields after signerInfos');
  if (signerInfos.length !== 1) {
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', `CMS has ${signerInfos.length} signers; exactly one is supported`);
  }
  const signer = parseSignerInfo(signerInfos[0]!);
  // RFC 5652 §5.1: version 1 for an issuer-and-serial signer over id-data, 3 for a subject-key-id signer. Checking it
  // (and the digest algorithm list) leaves no byte of the envelope that could change without a rejection.
  if (version !== ('subjectKeyId' in signer.sid ? 3 : 1))
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', `unexpected SignedData version ${version}`);
  if (!digestAlgorithms.includes(signer.digestAlgorithm)) {
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', 'SignedData.digestAlgorithms does not list the signer digest algorithm');
  }
  return { certificates, ...signer };
}

function smallInteger(tlv: Tlv): number {
  if (tlv.content.length !== 1 || tlv.content[0]! > 0x7f) throw new DerError('expected a small non-negative INTEGER');
  return tlv.content[0]!;
}

function parseSignerInfo(tlv: Tlv): Omit<GitsignCms, 'certificates'> {
  const si = children(expectTag(tlv, TAG.SEQUENCE, 'SignerInfo'));
  let i = 0;
  const version = smallInteger(expectTag(si[i++], TAG.INTEGER, 'SignerInfo.version'));
  const sidTlv = si[i++];
  let sid: GitsignCms['sid'];
  if (sidTlv?.tag === TAG.SEQUENCE) {
    const ias = children(sidTlv);
    if (ias.length !== 2) throw new DerError('IssuerAndSerialNumber must have two fields');
    sid = { issuer: expectTag(ias[0], TAG.SEQUENCE, 'issuer').raw, serial: expectTag(ias[1], TAG.INTEGER, 'serialNumber').content };
  } else if (sidTlv?.tag === ctx(0, false)) {
    sid = { subjectKeyId: sidTlv.content };
  } else {
    throw new DerError('SignerInfo.sid is neither IssuerAndSerialNumber nor SubjectKeyIdentifier');
  }
  if (version !== ('subjectKeyId' in sid ? 3 : 1))
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', `unexpected SignerInfo version ${version}`);
  const digestAlgorithm = algorithmOid(si[i++], 'digestAlgorithm');

  const signedAttrsTlv = si[i];
  if (signedAttrsTlv?.tag !== ctx(0, true)) {
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', 'SignerInfo has no signed attributes');
  }
  i++;
  const signedAttrs = parseAttributes(signedAttrsTlv, 'signed');
  // RFC 5652 §5.4: the signature covers the DER of the attributes with the EXPLICIT SET OF tag, not the [0] tag.
  const signedAttrsDer = Buffer.from(signedAttrsTlv.raw);
  signedAttrsDer[0] = TAG.SET;

  const signatureAlgorithm = algorithmOid(si[i++], 'signatureAlgorithm');
  const signature = expectTag(si[i++], TAG.OCTET_STRING, 'SignerInfo.signature').content;
  let unsignedAttrs: CmsAttribute[] = [];
  if (si[i]?.tag === ctx(1, true)) unsignedAttrs = parseAttributes(si[i++]!, 'unsigned');
  if (i !== si.length) throw new DerError('unexpected fields in SignerInfo');
  return { sid, digestAlgorithm, signatureAlgorithm, signedAttrsDer, signedAttrs, signature, unsignedAttrs };
}

function algorithmOid(tlv: Tlv | undefined, what: string): string {
  const alg = children(expectTag(tlv, TAG.SEQUENCE, what));
  if (alg.length < 1 || alg.length > 2) throw new DerError(`${what} must be an AlgorithmIdentifier`);
  // Parameters: absent or NULL for every algorithm accepted here; anything else cannot be one of them.
  if (alg[1] && (alg[1].tag !== TAG.NULL || alg[1].content.length !== 0)) {
    throw new CmsError('GITSIGN_CMS_UNSUPPORTED', `${what} has unexpected parameters`);
  }
  return decodeOid(expectTag(alg[0], TAG.OID, `${what}.algorithm`));
}

function parseAttributes(tlv: Tlv, what: string): CmsAttribute[] {
  const out: CmsAttribute[] = [];
  const seen = new Set<string>();
  for (const a of children(tlv)) {
    const parts = children(expectTag(a, TAG.SEQUENCE, `${what} attribute`));
    if (parts.length !== 2) throw new DerError(`${what} attribute must have type and values`);
    const oid = decodeOid(expectTag(parts[0], TAG.OID, `${what} attribute type`));
    // Two copies of an attribute would leave it open which one counts (RFC 5652 §11 forbids it for the signed ones).
    if (seen.has(oid)) throw new CmsError('GITSIGN_CMS_UNSUPPORTED', `${what} attribute ${oid} appears more than once`);
    seen.add(oid);
    out.push({ oid, values: children(expectTag(parts[1], TAG.SET, `${what} attribute values`)) });
  }
  return out;
}

/** The single value of attribute `oid`, or undefined when absent; several values are an error. */
export function singleAttributeValue(attrs: CmsAttribute[], oid: string, what: string): Tlv | undefined {
  const attr = attrs.find((a) => a.oid === oid);
  if (!attr) return undefined;
  if (attr.values.length !== 1) throw new CmsError('GITSIGN_CMS_UNSUPPORTED', `${what} attribute must have exactly one value`);
  return attr.values[0];
}
