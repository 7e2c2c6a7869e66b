// RFC 6962 signed certificate timestamps embedded in the Fulcio leaf: each one must verify against a CT log of the
// trusted root (same policy as @sigstore/verify: every SCT present must verify, and there must be at least one).
import { reject } from './errors.js';
import { trustId, verifiedSctSets } from './memo.js';
import { defaultHash, familyOf, sha256, verifySignature } from './keys.js';
import type { HashName } from './keys.js';
import { OID, findExtension, precertTbs } from './x509.js';
import type { Certificate } from './x509.js';
import { TAG, readRoot, value } from './der.js';
import type { BundleTrust } from './trust.js';

// TLS SignatureAlgorithm codes (RFC 5246 7.4.1.4.1, RFC 8422).
const SIG_ALG_FAMILY: Record<number, string> = { 1: 'rsa', 3: 'ec', 7: 'ed25519' };

interface Sct {
  logId: Buffer;
  timestamp: bigint;
  extensions: Buffer;
  hash: HashName;
  sigAlg: number;
  signature: Buffer;
}

function parseSctList(extValue: Uint8Array): Sct[] {
  // extnValue holds an OCTET STRING whose contents are the TLS-encoded SignedCertificateTimestampList.
  const inner = readRoot(extValue);
  if (inner.tag !== TAG.OCTET_STRING) reject('SCT_INVALID', 'SCT list is not an OCTET STRING');
  const buf = Buffer.from(value(extValue, inner));
  if (buf.length < 2 || buf.readUInt16BE(0) !== buf.length - 2) reject('SCT_INVALID', 'bad SCT list length');
  const out: Sct[] = [];
  let pos = 2;
  while (pos < buf.length) {
    if (pos + 2 > buf.length) reject('SCT_INVALID', 'truncated SCT');
    const len = buf.readUInt16BE(pos);
    pos += 2;
    const end = pos + len;
    if (end > buf.length) reject('SCT_INVALID', 'truncated SCT');
    const s = buf.subarray(pos, end);
    // version(1) logID(32) timestamp(8) extensions(2+n) hash(1) sig(1) signature(2+n)
    if (s.length < 1 + 32 + 8 + 2 + 2 + 2) reject('SCT_INVALID', 'truncated SCT');
    if (s[0] !== 0) reject('SCT_INVALID', 'unsupported SCT version');
    const logId = s.subarray(1, 33);
    const timestamp = s.readBigUInt64BE(33);
    const extLen = s.readUInt16BE(41);
    let p = 43 + extLen;
    if (p + 4 > s.length) reject('SCT_INVALID', 'truncated SCT');
    const extensions = s.subarray(43, p);
    const hashId = s[p]!;
    const sigAlg = s[p + 1]!;
    const sigLen = s.readUInt16BE(p + 2);
    p += 4;
    if (p + sigLen !== s.length) reject('SCT_INVALID', 'bad SCT signature length');
    const hash: HashName | undefined = hashId === 4 ? 'sha256' : hashId === 5 ? 'sha384' : hashId === 6 ? 'sha512' : undefined;
    if (hash === undefined) reject('SCT_INVALID', 'unsupported SCT hash algorithm');
    out.push({ logId, timestamp, extensions, hash, sigAlg, signature: s.subarray(p) });
    pos = end;
  }
  return out;
}

// Verified SCT sets, per trust object, by the exact DER of (leaf, issuer): the same Fulcio leaf is checked again on
// every retry or re-verification. Only a full success is remembered; any failure is recomputed (and thrown) each time.
export function verifyScts(leaf: Certificate, issuer: Certificate, trust: BundleTrust): number {
  const key = `${trustId(trust)}\u0000${Buffer.from(leaf.der).toString('latin1')}\u0000${Buffer.from(issuer.der).toString('latin1')}`;
  const hit = verifiedSctSets.get(key);
  if (hit !== undefined) return hit;
  const n = verifySctsUncached(leaf, issuer, trust);
  verifiedSctSets.set(key, n);
  return n;
}

function verifySctsUncached(leaf: Certificate, issuer: Certificate, trust: BundleTrust): number {
  const ext = findExtension(leaf, OID.sctList);
  if (ext === undefined) reject('SCT_MISSING', 'signing certificate has no embedded SCT');
  const scts = parseSctList(ext.value);
  if (scts.length === 0) reject('SCT_MISSING', 'signing certificate has no embedded SCT');
  const tbs = precertTbs(leaf, ext);
  const issuerKeyHash = sha256(issuer.spki);
  const len3 = Buffer.from([(tbs.length >> 16) & 0xff, (tbs.length >> 8) & 0xff, tbs.length & 0xff]);
  for (const sct of scts) {
    const ts = Buffer.alloc(8);
    ts.writeBigUInt64BE(sct.timestamp);
    const extLen = Buffer.alloc(2);
    extLen.writeUInt16BE(sct.extensions.length);
    // digitally-signed struct of RFC 6962 3.2 for a precert_entry.
    const signed = Buffer.concat([Buffer.from([0, 0]), ts, Buffer.from([0, 1]), issuerKeyHash, len3, tbs, extLen, sct.extensions]);
    const when = Number(sct.timestamp);
    const ok = trust.ctlogs.some((log) => {
      if (!log.logId.equals(sct.logId) || when < log.start || when > log.end) return false;
      const family = familyOf(log.key);
      if (SIG_ALG_FAMILY[sct.sigAlg] !== family) return false;
      const keyHash = defaultHash(log.key);
      // The SCT names its own hash; ECDSA/RSA logs sign with it, Ed25519 logs have none.
      return verifySignature(log.key, keyHash === null ? null : sct.hash, signed, sct.signature);
    });
    if (!ok) reject('SCT_INVALID', 'an embedded SCT does not verify against a trusted CT log');
  }
  return scts.length;
}
