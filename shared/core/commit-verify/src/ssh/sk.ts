/**
 * FIDO security-key signatures (OpenSSH PROTOCOL.u2f). The authenticator does not sign the message itself but
 *
 *   SHA-256(application) || byte flags || uint32 counter || extensions || SHA-256(message)
 *
 * where the application is the one bound into the public key (so a signature made for another relying party, e.g. a
 * website's "https://example.com", never verifies as an SSH signature) and flags/counter come from the authenticator
 * and travel in the signature blob. ed25519-sk signs those bytes; ecdsa-sk signs their SHA-256 (plain ECDSA-SHA256).
 */
import { createHash } from 'node:crypto';
import { u32 } from './wire.js';

/** Authenticator data flags (WebAuthn/CTAP2): the user touched the token; the token verified the user (PIN/biometric). */
export const SK_FLAG_USER_PRESENT = 0x01;
export const SK_FLAG_USER_VERIFIED = 0x04;

export interface SkSignatureDetails {
  flags: number;
  counter: number;
}

/** The bytes a security key signs for `message` (here: the SSHSIG signed data). No extensions: OpenSSH sends none. */
export function skSignedData(application: string, details: SkSignatureDetails, message: Uint8Array): Buffer {
  return Buffer.concat([
    createHash('sha256').update(application, 'latin1').digest(),
    Buffer.from([details.flags & 0xff]),
    u32(details.counter),
    createHash('sha256').update(message).digest(),
  ]);
}

export function describeSkFlags(flags: number): string {
  const named = [
    flags & SK_FLAG_USER_PRESENT ? 'user present' : 'no user presence',
    flags & SK_FLAG_USER_VERIFIED ? 'user verified' : 'no user verification',
  ];
  return `flags 0x${flags.toString(16).padStart(2, '0')} (${named.join(', ')})`;
}
