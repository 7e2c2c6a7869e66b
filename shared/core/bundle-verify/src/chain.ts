// Fulcio leaf certificate → trusted CA chain, at every verified signing time. The CA-internal part of each chain
// was checked when the trust was built; per bundle only the leaf's own signature and the validity windows remain.
import { reject } from './errors.js';
import { certSignedBy } from './memo.js';
import { KU_DIGITAL_SIGNATURE, OID, validAt } from './x509.js';
import type { Certificate } from './x509.js';
import { namesChain } from './trust.js';
import type { BundleTrust, CaChain } from './trust.js';

export interface ChainResult {
  /** The certificate that issued the leaf (needed for the SCT issuer key hash). */
  issuer: Certificate;
}

export function checkLeafProfile(leaf: Certificate): void {
  if (leaf.unknownCritical !== undefined) {
    reject('CERTIFICATE_INVALID', `signing certificate has unknown critical extension ${leaf.unknownCritical}`);
  }
  if (leaf.basicConstraints?.ca === true) reject('CERTIFICATE_INVALID', 'signing certificate is a CA certificate');
  if (leaf.keyUsage === undefined || !leaf.keyUsage(KU_DIGITAL_SIGNATURE)) {
    reject('CERTIFICATE_INVALID', 'signing certificate lacks the digitalSignature key usage');
  }
  if (leaf.extKeyUsage === undefined || !leaf.extKeyUsage.includes(OID.ekuCodeSigning)) {
    reject('CERTIFICATE_INVALID', 'signing certificate lacks the codeSigning extended key usage');
  }
}

export function verifyLeafChain(leaf: Certificate, times: number[], trust: BundleTrust): ChainResult {
  // (CA, position) pairs whose certificate names the leaf's issuer and whose path from there is sound.
  const candidates: Array<{ ca: CaChain; k: number }> = [];
  for (const ca of trust.certificateAuthorities) {
    for (let k = 0; k < ca.certs.length; k++) {
      if (ca.pathOk[k] === true && namesChain(leaf, ca.certs[k]!)) candidates.push({ ca, k });
    }
  }
  if (candidates.length === 0) reject('CERTIFICATE_CHAIN_INVALID', 'signing certificate was not issued by a trusted CA');

  // The leaf signature is the only per-bundle certificate signature; a verified (leaf, issuer) pair is remembered by
  // exact bytes (certSignedBy), a failed one is recomputed. Validity windows below are checked on every call.

  let issuer: Certificate | undefined;
  for (const t of times) {
    if (!validAt(leaf, t)) {
      reject('CERTIFICATE_EXPIRED', `signing certificate is not valid at ${new Date(t).toISOString()}`);
    }
    let found: Certificate | undefined;
    for (const { ca, k } of candidates) {
      if (t < ca.start || t > ca.end) continue;
      let allValid = true;
      for (let j = k; j < ca.certs.length; j++) {
        if (!validAt(ca.certs[j]!, t)) {
          allValid = false;
          break;
        }
      }
      if (!allValid) continue;
      if (!certSignedBy(leaf, ca.certs[k]!, ca.keys[k]!)) continue;
      found = ca.certs[k]!;
      break;
    }
    if (found === undefined) {
      reject('CERTIFICATE_CHAIN_INVALID', `no trusted CA chain is valid for the signing certificate at ${new Date(t).toISOString()}`);
    }
    // The SCT check needs one issuer; different CAs for different times would mean different issuer keys.
    if (issuer !== undefined && !Buffer.from(issuer.der).equals(found.der))
      reject('CERTIFICATE_CHAIN_INVALID', 'ambiguous certificate issuer');
    issuer = found;
  }
  if (issuer === undefined) reject('TIMESTAMP_MISSING', 'no verified time to check the certificate chain at');
  return { issuer };
}
