/**
 * Fulcio certificate chain and certificate-transparency checks at a given (log-proven) time.
 *
 * The CA chains in the trusted root are trust anchors: their internal links are checked once per CA object and
 * cached, so a verification costs one signature check for the leaf plus one per SCT.
 */
import { createHash } from 'node:crypto';
import { X509SCTExtension } from '@sigstore/core';
import type { SigstoreCertAuthority, SigstoreLogAuthority, SigstoreTrust } from '../sigstore-trust.js';
import { parseCertificate, precertificateTbs, signedBy } from './x509.js';
import type { CertInfo } from './x509.js';

interface PreparedCA {
  ca: SigstoreCertAuthority;
  /** Leaf-most first, root last; undefined when the chain in the trusted root is itself unusable. */
  certs: CertInfo[] | undefined;
}

const prepared = new WeakMap<SigstoreCertAuthority, PreparedCA>();

function prepare(ca: SigstoreCertAuthority): PreparedCA {
  const hit = prepared.get(ca);
  if (hit) return hit;
  let certs: CertInfo[] | undefined;
  try {
    certs = ca.certChain.map((c) => parseCertificate(c.root.toDER()));
    for (let i = 0; i < certs.length; i++) {
      const c = certs[i]!;
      const next = certs[i + 1];
      const isCA = c.cert.extBasicConstraints?.isCA === true;
      const mayIssue = c.cert.extKeyUsage === undefined || c.cert.extKeyUsage.keyCertSign;
      // Each link is checked: a trusted root whose chain does not hang together is not silently half-trusted.
      const linked = next ? c.issuer.equals(next.subject) && signedBy(c, next.key) : !c.issuer.equals(c.subject) || signedBy(c, c.key);
      if (!isCA || !mayIssue || !linked) certs = undefined;
      if (!certs) break;
    }
  } catch {
    certs = undefined;
  }
  const p = { ca, certs };
  prepared.set(ca, p);
  return p;
}

export type ChainResult = { ok: true; issuer: CertInfo; path: CertInfo[] } | { ok: false; reason: string };

/** Finds a trusted CA (valid at `at`) whose chain issued `leaf`, with every certificate on the path valid at `at`. */
export function verifyFulcioChain(trust: SigstoreTrust, leaf: CertInfo, at: Date): ChainResult {
  const aki = leaf.cert.extAuthorityKeyID?.keyIdentifier;
  let reason = 'no certificate authority in the trusted root was valid at that time';
  for (const ca of trust.certificateAuthorities) {
    if (at < ca.validFor.start || at > ca.validFor.end) continue;
    const { certs } = prepare(ca);
    if (!certs) {
      reason = 'the trusted root holds a malformed CA chain';
      continue;
    }
    reason = 'certificate was not issued by any certificate authority in the trusted root';
    for (let i = 0; i < certs.length; i++) {
      const issuer = certs[i]!;
      if (!leaf.issuer.equals(issuer.subject)) continue;
      const ski = issuer.cert.extSubjectKeyID?.keyIdentifier;
      if (aki && ski && !aki.equals(ski)) continue;
      if (!signedBy(leaf, issuer.key)) continue;
      const path = certs.slice(i);
      const expired = path.find((c) => at < c.cert.notBefore || at > c.cert.notAfter);
      if (expired) {
        reason = `issuing CA certificate is not valid at ${at.toISOString()}`;
        continue;
      }
      // pathLenConstraint: how many CA certificates may sit below this one (the leaf does not count).
      const tooDeep = path.some((c, depth) => {
        const limit = c.cert.extBasicConstraints?.pathLenConstraint;
        return limit !== undefined && limit < BigInt(depth);
      });
      if (tooDeep) {
        reason = 'certificate path exceeds a CA path length constraint';
        continue;
      }
      return { ok: true, issuer, path };
    }
  }
  return { ok: false, reason };
}

const OID_SCT = '1.3.6.1.4.1.11129.2.4.2';

export type SctResult = { ok: true; verified: number } | { ok: false; reason: string };

/**
 * Embedded SCTs (RFC 6962) from CT logs in the trusted root. Every SCT from a known log must verify; at least
 * `required` must. SCTs from logs the root does not know are ignored (they can neither help nor hurt).
 */
export function verifyEmbeddedScts(ctlogs: readonly SigstoreLogAuthority[], leaf: CertInfo, issuer: CertInfo, required: number): SctResult {
  let scts;
  try {
    const exts = leaf.cert.extensions.filter((e) => e.subs[0]?.toOID() === OID_SCT);
    if (exts.length > 1) return { ok: false, reason: 'certificate has more than one SCT extension' };
    scts = exts[0] ? new X509SCTExtension(exts[0]).signedCertificateTimestamps : [];
  } catch {
    return { ok: false, reason: 'certificate SCT extension is malformed' };
  }
  if (scts.length === 0) {
    return required > 0 ? { ok: false, reason: 'certificate carries no SCT' } : { ok: true, verified: 0 };
  }
  const tbs = precertificateTbs(leaf);
  if (!tbs) return { ok: false, reason: 'certificate SCT extension is malformed' };
  const issuerKeyHash = createHash('sha256').update(issuer.spki).digest();
  const lenPrefix = Buffer.from([(tbs.length >> 16) & 0xff, (tbs.length >> 8) & 0xff, tbs.length & 0xff]);
  const preCert = Buffer.concat([issuerKeyHash, lenPrefix, tbs]);
  let verified = 0;
  for (const sct of scts) {
    const logs = ctlogs.filter((l) => l.logID.equals(sct.logID));
    if (logs.length === 0) continue;
    const at = sct.datetime;
    const ok = logs.some((l) => at >= l.validFor.start && at <= l.validFor.end && safeVerify(() => sct.verify(preCert, l.publicKey)));
    if (!ok) return { ok: false, reason: `SCT from CT log ${sct.logID.toString('hex')} does not verify` };
    verified++;
  }
  if (verified < required) return { ok: false, reason: `certificate has ${verified} verifiable SCTs, ${required} required` };
  return { ok: true, verified };
}

function safeVerify(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}
