/**
 * OpenSSH user certificates for SSHSIG (PROTOCOL.certkeys), checked as `ssh-keygen -Y verify` does for a
 * `cert-authority` line of allowed_signers (sshkey_cert_check_authority with a required principal), plus two
 * refusals of our own (stricter than git): critical options are refused unless this verifier can honour them, and
 * the CA signature follows the same algorithm rules as any signature here (no RSA/SHA-1, RSA >= 2048 bits).
 */
import type { SshCertificate } from './keys.js';
import { CERT_FOREVER } from './keys.js';
import { reject } from './reject.js';
import { checkSignature, refuseUnusableKey } from './signature.js';

const USER_CERT = 1;

/** The CA's signature over the certificate body; throws SSH_CERT_SIGNATURE_INVALID (or the CA key's refusal). */
export function verifyCertificateSignature(cert: SshCertificate): string {
  refuseUnusableKey(cert.signatureKey, `certificate CA key ${cert.signatureKey.fingerprint}`);
  try {
    return checkSignature(cert.signatureKey, cert.signature, cert.signedPart).algorithm;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'SSH_SIGNATURE_INVALID' || code === 'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED') {
      reject(
        'SSH_CERT_SIGNATURE_INVALID',
        `certificate signature by CA ${cert.signatureKey.fingerprint} does not verify: ${(e as Error).message}`,
      );
    }
    throw e;
  }
}

function isoSeconds(s: bigint): string {
  if (s === CERT_FOREVER) return 'forever';
  // Beyond what a Date can hold: say so rather than print an invalid date.
  return s > 8_640_000_000_000n ? `${s}s after the epoch` : new Date(Number(s) * 1000).toISOString();
}

export interface CertificateAuthority {
  evidence: string[];
  /** `verify-required`: the signature must carry the authenticator's user-verification flag. */
  requireUserVerification: boolean;
}

/**
 * sshkey_cert_check_authority(cert, want_host=0, require_principal=1, wildcard=0, verify_time, principal): a user
 * certificate, valid at `atSeconds` (valid after <= t < valid before), listing `principal` exactly.
 */
export function checkCertificateAuthority(cert: SshCertificate, principal: string, atSeconds: number): CertificateAuthority {
  const id = `certificate serial ${cert.serial} key id ${JSON.stringify(cert.keyId)}`;
  if (cert.certType !== USER_CERT)
    reject('SSH_CERT_NOT_USER', `${id} is a ${cert.certType === 2 ? 'host' : `type-${cert.certType}`} certificate, not a user certificate`);
  const t = BigInt(atSeconds);
  const at = new Date(atSeconds * 1000).toISOString();
  if (t < cert.validAfter) reject('SSH_CERT_NOT_YET_VALID', `${id} is not yet valid at ${at} (valid after ${isoSeconds(cert.validAfter)})`);
  if (t >= cert.validBefore) reject('SSH_CERT_EXPIRED', `${id} has expired at ${at} (valid before ${isoSeconds(cert.validBefore)})`);
  if (cert.principals.length === 0)
    reject('SSH_CERT_PRINCIPAL_MISMATCH', `${id} lists no principals (a certificate for anyone vouches for no one)`);
  if (!cert.principals.includes(principal)) {
    reject(
      'SSH_CERT_PRINCIPAL_MISMATCH',
      `${id} is for ${cert.principals.map((p) => JSON.stringify(p)).join(', ')}, not ${JSON.stringify(principal)}`,
    );
  }
  let requireUserVerification = false;
  for (const o of cert.criticalOptions) {
    if (o.name === 'verify-required') requireUserVerification = true;
    else if (o.name === 'force-command' || o.name === 'source-address') {
      // They restrict a login (which command, from where); a signature carries neither, so the restriction could not
      // be honoured. ssh-keygen -Y verify ignores them; refusing is the fail-closed reading of "critical".
      reject('SSH_CERT_CRITICAL_OPTION_UNSUPPORTED', `${id} has critical option ${o.name}, which cannot be honoured for a signature`);
    } else reject('SSH_CERT_CRITICAL_OPTION_UNSUPPORTED', `${id} has unknown critical option ${JSON.stringify(o.name)}`);
  }
  return {
    requireUserVerification,
    evidence: [
      `user ${id}, signed by CA ${cert.signatureKey.fingerprint}, certifies ${cert.key.type} key ${cert.key.fingerprint}`,
      `certificate valid at ${at} (valid after ${isoSeconds(cert.validAfter)}, valid before ${isoSeconds(cert.validBefore)}), principals ${cert.principals.map((p) => JSON.stringify(p)).join(', ')}`,
      ...(cert.criticalOptions.length > 0 ? [`critical options: ${cert.criticalOptions.map((o) => o.name).join(', ')}`] : []),
    ],
  };
}
