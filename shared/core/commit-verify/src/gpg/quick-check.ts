import type { Key, SignaturePacket } from 'openpgp';

/**
 * Why GitHub's 2017 web-flow key fails in openpgp.js but not in gpg, and the narrow fix.
 *
 * Every OpenPGP signature packet carries, outside the signed data, a two-octet "quick check": the left 16 bits of the
 * digest that was signed (RFC 4880 5.2.2/5.2.3). It is not covered by the signature, so anyone can set it to anything;
 * it only lets a verifier skip the public-key operation for an obviously wrong digest. gpg does not reject a v4
 * signature whose quick check is wrong, it always performs the real check. openpgp.js 6.x compares the two octets
 * first and throws "Signed digest did not match" before doing the public-key operation, and no `config` option turns
 * that off.
 *
 * The web-flow key (5DE3 E050 9C47 EA3C F04A 42D3 4AEE 18F8 3AFD EB23) has exactly this defect in its only
 * self-signature: the packet says `99 01` (which is just the first two bytes of the hashed key material, 0x99 and the
 * high byte of the key length), while the real SHA-256 digest starts `84 77`. The RSA signature itself is a correct
 * PKCS#1 signature over the `84 77...` digest. So openpgp.js finds no valid self-signature, treats the key as unusable,
 * and every web-flow commit fails, although the commit signatures themselves are fine (their quick checks match).
 *
 * None of openpgp.js's config switches is related (hash/algorithm rejection lists, minRSABits, allowMissingKeyFlags,
 * ...), and loosening any of them would weaken checks that have nothing to do with this defect. Instead, for the v4
 * signatures *inside a key* (self-certifications, direct-key signatures, subkey bindings and their embedded
 * back-signatures, revocations), we recompute the digest exactly as openpgp.js would for that signature and overwrite
 * only the two quick-check octets with it. openpgp.js then runs its full verification unchanged: hash-algorithm policy,
 * the public-key signature over the whole digest, times, flags. A forged or corrupted signature still fails there.
 *
 * Deliberately not repaired:
 * - v6 signatures: RFC 9580 requires verifiers to reject a v6 signature whose quick-check octets are wrong.
 * - the commit (data) signature: a wrong quick check there stays a rejection. gpg would still accept it, but no signer
 *   we know of produces such signatures and "reject with a reason" is always acceptable for the gate.
 *
 * Repairing revocation signatures matters in the safe direction as well: openpgp.js silently ignores a revocation whose
 * quick check is wrong, so without the repair a key that gpg considers revoked would look valid here.
 */

/** What was repaired, for the keyring's audit notes. */
export interface QuickCheckRepair {
  signatureType: number;
  stored: string;
  computed: string;
}

/** openpgp.js `SignaturePacket.hash` exists at runtime but is not in its type declarations. */
type HashFn = (signatureType: number, data: object) => Promise<Uint8Array>;

/** Data the signature covers, in openpgp.js's own `toSign` vocabulary. */
type SignedData = object;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

async function repairOne(sig: SignaturePacket, data: SignedData, out: QuickCheckRepair[]): Promise<void> {
  if (sig.version !== 4 || sig.signatureType === null || !(sig.signedHashValue instanceof Uint8Array)) return;
  const hash = (sig as unknown as { hash?: HashFn }).hash;
  // Fail closed: if openpgp.js internals change, nothing is repaired and such keys are rejected as before.
  if (typeof hash !== 'function') return;
  let digest: Uint8Array;
  try {
    digest = await hash.call(sig, sig.signatureType, data);
  } catch {
    return; // e.g. unsupported hash algorithm: leave it for openpgp.js's own verification to reject.
  }
  if (!(digest instanceof Uint8Array) || digest.length < 2) return;
  const stored = sig.signedHashValue;
  if (stored.length === 2 && stored[0] === digest[0] && stored[1] === digest[1]) return;
  out.push({ signatureType: sig.signatureType, stored: hex(stored), computed: hex(digest.subarray(0, 2)) });
  sig.signedHashValue = digest.slice(0, 2);
}

/**
 * Normalises the quick-check octets of the v4 signatures inside `key` (mutates it; call right after parsing, before
 * any verification caches a result). Returns what was changed.
 */
export async function repairKeyQuickChecks(key: Key): Promise<QuickCheckRepair[]> {
  const out: QuickCheckRepair[] = [];
  const primary = key.keyPacket;
  const direct = (key as unknown as { directSignatures?: SignaturePacket[] }).directSignatures ?? [];
  for (const sig of direct) await repairOne(sig, { key: primary }, out);
  for (const sig of key.revocationSignatures) await repairOne(sig, { key: primary }, out);
  for (const user of key.users) {
    const data = { key: primary, userID: user.userID, userAttribute: user.userAttribute };
    for (const sig of user.selfCertifications) await repairOne(sig, data, out);
    for (const sig of user.revocationSignatures) await repairOne(sig, data, out);
  }
  for (const subkey of key.subkeys) {
    const data = { key: primary, bind: subkey.keyPacket };
    for (const sig of subkey.bindingSignatures) {
      await repairOne(sig, data, out);
      if (sig.embeddedSignature) await repairOne(sig.embeddedSignature, data, out);
    }
    for (const sig of subkey.revocationSignatures) await repairOne(sig, data, out);
  }
  return out;
}

/** The same repair for a stand-alone key revocation signature (a revocation certificate). */
export async function repairRevocationQuickCheck(sig: SignaturePacket, key: Key): Promise<QuickCheckRepair[]> {
  const out: QuickCheckRepair[] = [];
  await repairOne(sig, { key: key.keyPacket }, out);
  return out;
}
