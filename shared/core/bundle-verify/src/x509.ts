// X.509 certificate parsing for exactly what Sigstore verification needs. All fields are views into the original
// DER, so the signed TBS bytes are checked as they arrived and nothing is re-encoded (except the precertificate
// TBS for SCTs, which is spliced from raw pieces).
import {
  TAG,
  children,
  expectTag,
  raw,
  readBitStringBytes,
  readBoolean,
  readNamedBits,
  readOid,
  readRoot,
  readSmallInt,
  readString,
  readTime,
  value,
} from './der.js';
import type { DerNode } from './der.js';
import { VerifyError } from './errors.js';

export const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  sctList: '1.3.6.1.4.1.11129.2.4.2',
  fulcioIssuerV1: '1.3.6.1.4.1.57264.1.1',
  fulcioIssuerV2: '1.3.6.1.4.1.57264.1.8',
  fulcioBuildSignerUri: '1.3.6.1.4.1.57264.1.9',
  fulcioRunnerEnvironment: '1.3.6.1.4.1.57264.1.11',
  fulcioSourceRepoUri: '1.3.6.1.4.1.57264.1.12',
  fulcioSourceRepoDigest: '1.3.6.1.4.1.57264.1.13',
  fulcioSourceRepoRef: '1.3.6.1.4.1.57264.1.14',
  fulcioOtherNameSan: '1.3.6.1.4.1.57264.1.7',
  fulcioBuildTrigger: '1.3.6.1.4.1.57264.1.20',
  ekuCodeSigning: '1.3.6.1.5.5.7.3.3',
  ekuTimeStamping: '1.3.6.1.5.5.7.3.8',
} as const;

// Critical extensions we understand and enforce; any other critical extension makes the certificate unusable
// (RFC 5280 4.2).
const UNDERSTOOD_CRITICAL = new Set<string>([
  OID.keyUsage,
  OID.basicConstraints,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyId,
  OID.authorityKeyId,
]);

export const KU_DIGITAL_SIGNATURE = 0;
export const KU_KEY_CERT_SIGN = 5;

export interface Extension {
  oid: string;
  critical: boolean;
  /** Contents of extnValue (the DER inside the OCTET STRING). */
  value: Uint8Array;
  /** The whole Extension SEQUENCE within the certificate DER. */
  node: DerNode;
}

export interface San {
  kind: 'email' | 'uri' | 'dns' | 'otherName' | 'other';
  value: string;
}

export interface Certificate {
  der: Uint8Array;
  tbs: Uint8Array;
  tbsNode: DerNode;
  sigAlgOid: string;
  signature: Uint8Array;
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: number;
  notAfter: number;
  spki: Uint8Array;
  extensions: Extension[];
  /** The [3] wrapper around the extensions, which must be the last TBS field. */
  extensionsWrapper?: DerNode;
  basicConstraints?: { ca: boolean; pathLen?: number };
  keyUsage?: (bit: number) => boolean;
  extKeyUsage?: string[];
  subjectKeyId?: Uint8Array;
  authorityKeyId?: Uint8Array;
  sans: San[];
  /** Set when the certificate carries a critical extension we do not enforce. */
  unknownCritical?: string;
}

function bad(reason: string): never {
  throw new VerifyError('CERTIFICATE_INVALID', reason);
}

export function parseCertificate(der: Uint8Array): Certificate {
  try {
    return parse(der);
  } catch (e) {
    if (e instanceof VerifyError && e.code === 'CERTIFICATE_INVALID') throw e;
    return bad(`malformed certificate: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function parse(der: Uint8Array): Certificate {
  const root = readRoot(der);
  expectTag(root, TAG.SEQUENCE, 'Certificate');
  const top = children(der, root);
  if (top.length !== 3) bad('Certificate must have three fields');
  const tbsNode = expectTag(top[0], TAG.SEQUENCE, 'TBSCertificate');
  const outerAlg = expectTag(top[1], TAG.SEQUENCE, 'signatureAlgorithm');
  const signature = readBitStringBytes(der, expectTag(top[2], TAG.BIT_STRING, 'signatureValue'));

  const f = children(der, tbsNode);
  let i = 0;
  let version = 0;
  if (f[0]?.tag === 0xa0) {
    const v = children(der, f[0]);
    if (v.length !== 1) bad('bad version');
    version = readSmallInt(der, v[0]!);
    i++;
  }
  if (version !== 2) bad('only X.509 v3 certificates are accepted');
  const serialNode = expectTag(f[i++], TAG.INTEGER, 'serialNumber');
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, 'signature');
  // The algorithm inside the signed TBS must be the one outside it, byte for byte.
  if (!Buffer.from(raw(der, innerAlg)).equals(raw(der, outerAlg))) bad('signature algorithm mismatch');
  const algFields = children(der, outerAlg);
  const sigAlgOid = readOid(der, expectTag(algFields[0], TAG.OID, 'algorithm'));
  const issuerNode = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  const validity = children(der, expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) bad('bad validity');
  const notBefore = readTime(der, validity[0]!);
  const notAfter = readTime(der, validity[1]!);
  const subjectNode = expectTag(f[i++], TAG.SEQUENCE, 'subject');
  const spkiNode = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  // Unique identifiers ([1], [2]) are legal but unused by us.
  while (f[i] !== undefined && (f[i]!.tag === 0x81 || f[i]!.tag === 0xa1 || f[i]!.tag === 0x82 || f[i]!.tag === 0xa2)) i++;
  let extensionsWrapper: DerNode | undefined;
  const extensions: Extension[] = [];
  if (f[i] !== undefined) {
    extensionsWrapper = expectTag(f[i++], 0xa3, 'extensions');
    const inner = children(der, extensionsWrapper);
    if (inner.length !== 1) bad('bad extensions wrapper');
    const seen = new Set<string>();
    for (const extNode of children(der, expectTag(inner[0], TAG.SEQUENCE, 'Extensions'))) {
      const parts = children(der, expectTag(extNode, TAG.SEQUENCE, 'Extension'));
      const oid = readOid(der, expectTag(parts[0], TAG.OID, 'extnID'));
      let critical = false;
      let valueNode = parts[1];
      if (valueNode?.tag === TAG.BOOLEAN) {
        critical = readBoolean(der, valueNode);
        valueNode = parts[2];
        if (parts.length !== 3) bad('bad extension');
      } else if (parts.length !== 2) {
        bad('bad extension');
      }
      const v = value(der, expectTag(valueNode, TAG.OCTET_STRING, 'extnValue'));
      if (seen.has(oid)) bad(`duplicate extension ${oid}`);
      seen.add(oid);
      extensions.push({ oid, critical, value: v, node: extNode });
    }
  }
  if (f[i] !== undefined) bad('unexpected trailing TBS fields');

  const cert: Certificate = {
    der,
    tbs: raw(der, tbsNode),
    tbsNode,
    sigAlgOid,
    signature,
    serial: value(der, serialNode),
    issuer: raw(der, issuerNode),
    subject: raw(der, subjectNode),
    notBefore,
    notAfter,
    spki: raw(der, spkiNode),
    extensions,
    sans: [],
  };
  if (extensionsWrapper !== undefined) cert.extensionsWrapper = extensionsWrapper;
  for (const ext of extensions) {
    if (ext.critical && !UNDERSTOOD_CRITICAL.has(ext.oid) && cert.unknownCritical === undefined) cert.unknownCritical = ext.oid;
    parseKnownExtension(cert, ext);
  }
  return cert;
}

function parseKnownExtension(cert: Certificate, ext: Extension): void {
  const v = ext.value;
  switch (ext.oid) {
    case OID.basicConstraints: {
      const seq = children(v, expectTag(readRoot(v), TAG.SEQUENCE, 'BasicConstraints'));
      let ca = false;
      let k = 0;
      if (seq[k]?.tag === TAG.BOOLEAN) ca = readBoolean(v, seq[k++]!);
      const bc: { ca: boolean; pathLen?: number } = { ca };
      if (seq[k] !== undefined) bc.pathLen = readSmallInt(v, expectTag(seq[k++], TAG.INTEGER, 'pathLenConstraint'));
      if (seq[k] !== undefined) bad('bad BasicConstraints');
      cert.basicConstraints = bc;
      return;
    }
    case OID.keyUsage:
      cert.keyUsage = readNamedBits(v, expectTag(readRoot(v), TAG.BIT_STRING, 'KeyUsage'));
      return;
    case OID.extKeyUsage:
      cert.extKeyUsage = children(v, expectTag(readRoot(v), TAG.SEQUENCE, 'ExtKeyUsage')).map((n) => readOid(v, n));
      return;
    case OID.subjectKeyId:
      cert.subjectKeyId = value(v, expectTag(readRoot(v), TAG.OCTET_STRING, 'SubjectKeyIdentifier'));
      return;
    case OID.authorityKeyId: {
      const seq = children(v, expectTag(readRoot(v), TAG.SEQUENCE, 'AuthorityKeyIdentifier'));
      const kid = seq.find((n) => n.tag === 0x80);
      if (kid !== undefined) cert.authorityKeyId = value(v, kid);
      return;
    }
    case OID.subjectAltName:
      cert.sans = parseSans(v);
      return;
    default:
      return;
  }
}

function parseSans(v: Uint8Array): San[] {
  const out: San[] = [];
  for (const gn of children(v, expectTag(readRoot(v), TAG.SEQUENCE, 'GeneralNames'))) {
    switch (gn.tag) {
      case 0x81:
        out.push({ kind: 'email', value: readString(v, gn) });
        break;
      case 0x82:
        out.push({ kind: 'dns', value: readString(v, gn) });
        break;
      case 0x86:
        out.push({ kind: 'uri', value: readString(v, gn) });
        break;
      case 0xa0: {
        // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }; Fulcio uses it for usernames (UTF8String).
        const parts = children(v, gn);
        const oid = readOid(v, expectTag(parts[0], TAG.OID, 'otherName type-id'));
        const wrapped = expectTag(parts[1], 0xa0, 'otherName value');
        const inner = children(v, wrapped);
        if (oid === OID.fulcioOtherNameSan && inner.length === 1 && inner[0]!.tag === TAG.UTF8_STRING) {
          out.push({ kind: 'otherName', value: readString(v, inner[0]!) });
        } else {
          out.push({ kind: 'other', value: '' });
        }
        break;
      }
      default:
        out.push({ kind: 'other', value: '' });
    }
  }
  return out;
}

export function findExtension(cert: Certificate, oid: string): Extension | undefined {
  for (const e of cert.extensions) if (e.oid === oid) return e;
  return undefined;
}

/** Fulcio v2 extensions hold a DER UTF8String; returns undefined when absent. */
export function utf8Extension(cert: Certificate, oid: string): string | undefined {
  const ext = findExtension(cert, oid);
  if (ext === undefined) return undefined;
  const node = readRoot(ext.value);
  if (node.tag !== TAG.UTF8_STRING) bad(`extension ${oid} is not a UTF8String`);
  return readString(ext.value, node);
}

/** OIDC issuer: the v2 extension (DER UTF8String) or the deprecated v1 one (raw bytes); they must agree. */
export function fulcioIssuer(cert: Certificate): string | undefined {
  const v2 = utf8Extension(cert, OID.fulcioIssuerV2);
  const v1ext = findExtension(cert, OID.fulcioIssuerV1);
  let v1: string | undefined;
  if (v1ext !== undefined) {
    try {
      v1 = new TextDecoder('utf-8', { fatal: true }).decode(v1ext.value);
    } catch {
      bad('issuer extension is not UTF-8');
    }
  }
  if (v2 !== undefined && v1 !== undefined && v1 !== v2) bad('certificate carries two different OIDC issuers');
  return v2 ?? v1;
}

export function isSelfIssued(cert: Certificate): boolean {
  return Buffer.from(cert.subject).equals(cert.issuer);
}

export function validAt(cert: Certificate, t: number): boolean {
  return cert.notBefore <= t && t <= cert.notAfter;
}

function derLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  let n = len;
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/**
 * RFC 6962 3.2: the TBS the CT log signed is this certificate's TBS without the SCT list extension. Spliced from
 * the original bytes: everything before the extensions is copied verbatim, only the three enclosing lengths change.
 */
export function precertTbs(cert: Certificate, sctExt: Extension): Buffer {
  const w = cert.extensionsWrapper;
  if (w === undefined || w.end !== cert.tbsNode.end) bad('extensions must be the last TBS field');
  const der = cert.der;
  const kept = cert.extensions.filter((e) => e !== sctExt).map((e) => der.subarray(e.node.start, e.node.end));
  const extsBody = Buffer.concat(kept);
  const extsSeq = Buffer.concat([Buffer.from([0x30]), derLength(extsBody.length), extsBody]);
  const parts: Buffer[] = [Buffer.from(der.subarray(cert.tbsNode.valueStart, w.start))];
  if (kept.length > 0) parts.push(Buffer.from([0xa3]), derLength(extsSeq.length), extsSeq);
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}
