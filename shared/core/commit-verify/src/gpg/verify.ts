import * as openpgp from 'openpgp';
import type { Key, LiteralDataPacket, SignaturePacket, Subkey } from 'openpgp';
import type { MethodReject, MethodResult } from '../types.js';
import { OPENPGP_CONFIG } from './config.js';
import { NO_TIME_CHECK, describeError, findKeyRevocation, isGpgKeyring, type GpgKeyring, type GpgKeyringEntry } from './keyring.js';

const { enums } = openpgp;

/** Real commit signatures are 0.1-2 KiB of armor; the cap bounds the work an attacker-supplied header can cause. */
const MAX_SIGNATURE_CHARS = 64 * 1024;

export interface VerifyGpgCommitSignatureInput {
  /** The exact signed bytes: the raw commit without its gpgsig header (`parseCommit(raw).payload`). */
  payload: Uint8Array;
  /** The armored detached signature from the gpgsig header. */
  signature: string;
  keyring: GpgKeyring;
  /**
   * When given, the signing key's primary fingerprint must be one of these (full v4/v6 fingerprints, case-insensitive,
   * spaces ignored). An empty list allows nobody. When absent, any key in the keyring is accepted.
   */
  allowedFingerprints?: string[];
  /** The verifier's clock; defaults to the current time. */
  now?: Date;
}

function reject(code: string, reason: string): MethodReject {
  return { ok: false, method: 'gpg', code, reason };
}

/** Full fingerprint in canonical form (lower-case hex, no spaces), or null if `value` is not one. */
export function normalizeGpgFingerprint(value: string): string | null {
  if (typeof value !== 'string') return null;
  const compact = value.replace(/\s+/g, '').toLowerCase();
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(compact) ? compact : null;
}

function iso(date: Date | number): string {
  return new Date(date).toISOString();
}

function algorithmName(sig: SignaturePacket): string {
  const pk =
    sig.publicKeyAlgorithm === null ? 'unknown' : String(enums.read(enums.publicKey, sig.publicKeyAlgorithm) ?? sig.publicKeyAlgorithm);
  return `${pk}/${hashName(sig)}`;
}

function hashName(sig: SignaturePacket): string {
  return sig.hashAlgorithm === null ? 'unknown' : String(enums.read(enums.hash, sig.hashAlgorithm) ?? sig.hashAlgorithm).toUpperCase();
}

function expiryText(expiry: Date | number | null): string {
  if (expiry === null) return 'unknown';
  if (expiry === Infinity) return 'never';
  return iso(expiry);
}

/**
 * Verifies a commit's OpenPGP signature against the keyring, as of the signature's creation time, and returns a
 * verdict. Never throws: every failure, including malformed input and internal errors, is a rejection with a code.
 *
 * Accepted only when all hold: exactly one v4/v6 binary or text signature packet; the issuer is in the keyring; the
 * signature's creation time is not after `now` and the signature has not expired; its hash algorithm is acceptable for
 * data; the public-key signature verifies over `payload`; the signing key existed at signing time; neither the primary
 * key nor the signing subkey carries a valid revocation (whatever its reason or date: a revoked key never vouches for a
 * deployment); the key and the subkey were not expired at signing time and were marked for signing then (openpgp.js
 * `getSigningKey` at the signature time); and, when given, the primary fingerprint is in `allowedFingerprints`.
 *
 * A key that has expired since is fine for signatures made before its expiry (that is what expiry means); note that
 * the creation time is a claim of the signer.
 */
export async function verifyGpgCommitSignature(input: VerifyGpgCommitSignatureInput): Promise<MethodResult> {
  try {
    return await verifyOrReject(input);
  } catch (e) {
    // Only hostile inputs (e.g. a throwing getter) or a bug get here: neither may crash a worker or pass as an accept.
    return reject('GPG_VERIFY_FAILED', `verification could not complete: ${describeError(e)}`);
  }
}

async function verifyOrReject(input: VerifyGpgCommitSignatureInput): Promise<MethodResult> {
  if (typeof input !== 'object' || input === null) return reject('GPG_INPUT_INVALID', 'input must be an object');
  const { payload, signature, keyring, allowedFingerprints } = input;
  if (!(payload instanceof Uint8Array)) return reject('GPG_INPUT_INVALID', 'payload must be a Uint8Array');
  if (!isGpgKeyring(keyring)) return reject('GPG_KEYRING_INVALID', 'keyring was not created by createGpgKeyring');
  const now = input.now === undefined ? new Date() : input.now;
  if (!(now instanceof Date) || !Number.isFinite(now.getTime())) return reject('GPG_INPUT_INVALID', 'now must be a valid Date');

  let allowed: Set<string> | null = null;
  if (allowedFingerprints !== undefined) {
    if (!Array.isArray(allowedFingerprints)) return reject('GPG_ALLOWED_FINGERPRINT_INVALID', 'allowedFingerprints must be an array');
    allowed = new Set();
    for (const [i, value] of allowedFingerprints.entries()) {
      const fpr = normalizeGpgFingerprint(value);
      // A key id or a typo must not silently match nothing (or, worse, something else): the policy itself is wrong.
      if (fpr === null) {
        return reject('GPG_ALLOWED_FINGERPRINT_INVALID', `allowedFingerprints[${i}] is not a full 40- or 64-hex-digit fingerprint`);
      }
      allowed.add(fpr);
    }
  }

  if (typeof signature !== 'string') return reject('GPG_SIGNATURE_MALFORMED', 'signature must be a string');
  if (signature.length > MAX_SIGNATURE_CHARS) {
    return reject('GPG_SIGNATURE_MALFORMED', `signature is ${signature.length} characters, more than the ${MAX_SIGNATURE_CHARS} accepted`);
  }
  let parsed: openpgp.Signature;
  try {
    parsed = await openpgp.readSignature({ armoredSignature: signature, config: OPENPGP_CONFIG });
  } catch (e) {
    return reject('GPG_SIGNATURE_MALFORMED', `not a readable armored OpenPGP signature: ${describeError(e)}`);
  }
  const packets = [...parsed.packets];
  if (packets.length !== 1 || !(packets[0] instanceof openpgp.SignaturePacket)) {
    const count = packets.filter((p) => p instanceof openpgp.SignaturePacket).length;
    return reject(
      'GPG_SIGNATURE_MALFORMED',
      count === 0
        ? 'no supported signature packet (only v4 and v6 signatures are supported)'
        : `expected exactly one signature packet, found ${packets.length} packets`,
    );
  }
  const sig = packets[0];
  if (sig.signatureType !== enums.signature.binary && sig.signatureType !== enums.signature.text) {
    return reject('GPG_SIGNATURE_MALFORMED', `signature type ${String(sig.signatureType)} is not a document signature`);
  }
  const created = sig.created;
  if (!(created instanceof Date) || !Number.isFinite(created.getTime())) {
    return reject('GPG_SIGNATURE_MALFORMED', 'signature has no creation time');
  }
  const keyId = sig.issuerKeyID?.toHex?.().toLowerCase() ?? '';
  if (!/^[0-9a-f]{16}$/.test(keyId) || /^0+$/.test(keyId)) {
    return reject('GPG_SIGNATURE_MALFORMED', 'signature does not name its issuer key');
  }
  const issuerFpr = sig.issuerFingerprint ? Buffer.from(sig.issuerFingerprint).toString('hex') : null;

  // Candidate (key, signing key) pairs. A key id collision between keyring keys leaves more than one; each is tried.
  const candidates: { entry: GpgKeyringEntry; signingKey: Key | Subkey }[] = [];
  for (const entry of keyring.byKeyId.get(keyId) ?? []) {
    for (const k of entry.key.getKeys(sig.issuerKeyID)) {
      if (issuerFpr === null || k.getFingerprint().toLowerCase() === issuerFpr) candidates.push({ entry, signingKey: k });
    }
  }
  if (candidates.length === 0) {
    return reject('GPG_UNKNOWN_KEY', `signed by key ${issuerFpr ?? keyId}, which is not in the keyring`);
  }

  if (created.getTime() > now.getTime()) {
    return reject('GPG_SIGNATURE_FROM_FUTURE', `signature claims to be made at ${iso(created)}, after the verifier's time ${iso(now)}`);
  }
  const sigExpiry = sig.getExpirationTime();
  if (sigExpiry !== Infinity && now.getTime() >= new Date(sigExpiry).getTime()) {
    return reject('GPG_SIGNATURE_EXPIRED', `signature expired at ${iso(sigExpiry)}`);
  }
  if (sig.hashAlgorithm === null || OPENPGP_CONFIG.rejectMessageHashAlgorithms.has(sig.hashAlgorithm)) {
    return reject('GPG_INSECURE_ALGORITHM', `signature uses ${hashName(sig)}, which is not accepted for data signatures`);
  }

  const message = await openpgp.createMessage({ binary: payload });
  const literal = message.packets.findPacket(enums.packet.literalData) as LiteralDataPacket | undefined;
  if (!literal) return reject('GPG_VERIFY_FAILED', 'could not prepare the payload for verification');

  let firstRejection: MethodReject | null = null;
  for (const { entry, signingKey } of candidates) {
    const result = await checkWithKey({ sig, created, literal, payloadLength: payload.length, now, allowed, entry, signingKey });
    if (result.ok) return result;
    firstRejection ??= result;
  }
  return firstRejection ?? reject('GPG_VERIFY_FAILED', 'no candidate key was checked');
}

interface KeyCheck {
  sig: SignaturePacket;
  created: Date;
  literal: LiteralDataPacket;
  payloadLength: number;
  now: Date;
  allowed: Set<string> | null;
  entry: GpgKeyringEntry;
  signingKey: Key | Subkey;
}

async function checkWithKey(c: KeyCheck): Promise<MethodResult> {
  const { sig, created, entry, signingKey } = c;
  const fpr = entry.fingerprint;
  const isSubkey = signingKey instanceof openpgp.Subkey;
  const signerText = isSubkey ? `signing subkey ${signingKey.getFingerprint()} of key ${fpr}` : `key ${fpr}`;

  // 1. The signature itself: the public-key operation over the full digest of the payload.
  try {
    await sig.verify(signingKey.keyPacket, sig.signatureType as openpgp.enums.signature, c.literal, c.now, true, OPENPGP_CONFIG);
  } catch (e) {
    return reject('GPG_SIGNATURE_INVALID', `signature does not verify with ${signerText}: ${describeError(e)}`);
  }

  // 2. A signature cannot predate the key that made it (gpg reports such a key as "newer than the signature").
  if (signingKey.getCreationTime().getTime() > created.getTime()) {
    return reject(
      'GPG_KEY_NOT_YET_VALID',
      `signature made at ${iso(created)}, before ${signerText} was created at ${iso(signingKey.getCreationTime())}`,
    );
  }

  // 3. Revocation. openpgp.js would honour a "superseded"/"retired" revocation only for signatures made after it; the
  // gate is stricter and treats every valid revocation as final, because a signature's creation time is the signer's
  // own claim and could be backdated by whoever holds a retired key.
  const revocation = await findKeyRevocation(entry.key);
  if (revocation) return reject('GPG_KEY_REVOKED', `key ${fpr} is revoked${revocationReason(revocation)}`);
  if (isSubkey) {
    const subRevocation = await findSubkeyRevocation(entry.key, signingKey);
    if (subRevocation) return reject('GPG_KEY_REVOKED', `${signerText} is revoked${revocationReason(subRevocation)}`);
  }

  // 4. Validity at signing time: self-signature, expiry, usage flags, subkey binding and back-signature, algorithm
  // strength, all as of the signature's creation time.
  let chosen: Key | Subkey;
  try {
    chosen = await entry.key.getSigningKey(sig.issuerKeyID, created, undefined, OPENPGP_CONFIG);
  } catch (e) {
    return await classifyKeyFailure(e, c, signerText);
  }
  if (chosen.getFingerprint().toLowerCase() !== signingKey.getFingerprint().toLowerCase()) {
    return reject('GPG_KEY_INVALID', `${signerText} is not the key openpgp.js selects for signing at ${iso(created)}`);
  }

  let identity = fpr;
  try {
    const { user } = await entry.key.getPrimaryUser(created, undefined, OPENPGP_CONFIG);
    if (user.userID) identity = user.userID.userID;
  } catch {
    // v6 keys may carry no user id; the fingerprint then stands for the identity.
  }

  // 5. Policy: only after the signature is known to be genuine, so the reason names a real signer.
  if (c.allowed !== null && !c.allowed.has(fpr)) {
    return reject(
      'GPG_SIGNER_NOT_ALLOWED',
      `valid signature by ${fpr} (${identity}), which is not among the ${c.allowed.size} allowed fingerprint(s)`,
    );
  }

  const keyExpiry = await entry.key.getExpirationTime(undefined, OPENPGP_CONFIG).catch(() => null);
  const evidence = [
    `OpenPGP v${sig.version} ${sig.signatureType === enums.signature.text ? 'text' : 'binary'} signature, ${algorithmName(sig)}, created ${iso(created)} (creation time as claimed by the signer)`,
    `signature verifies over the ${c.payloadLength}-byte commit payload with ${signerText}`,
    `key ${fpr} (${identity}): not revoked, valid for signing at the signature time, key expiry ${expiryText(keyExpiry)}`,
    c.allowed === null
      ? 'no allowedFingerprints given: any key in the keyring is accepted'
      : `signer ${fpr} is one of the ${c.allowed.size} allowed fingerprint(s)`,
    ...entry.notes.map((n) => `keyring: ${n}`),
  ];
  return { ok: true, method: 'gpg', signer: { identity, keyFingerprint: fpr, signedAt: iso(created) }, evidence };
}

function revocationReason(sig: SignaturePacket): string {
  const flag = sig.reasonForRevocationFlag;
  // openpgp.js's runtime enums are plain name->number objects (no reverse mapping), and its `enums.read` typings
  // do not cover this enum, so the name is looked up directly.
  const name =
    flag === null || flag === undefined
      ? null
      : (Object.entries(enums.reasonForRevocation).find(([, v]) => v === flag)?.[0] ?? `code ${String(flag)}`);
  const text = sig.reasonForRevocationString ? `: "${sig.reasonForRevocationString.slice(0, 200)}"` : '';
  return ` (revoked ${sig.created ? iso(sig.created) : 'at an unknown time'}${name ? `, reason ${String(name)}` : ''}${text})`;
}

async function findSubkeyRevocation(key: Key, subkey: Subkey): Promise<SignaturePacket | null> {
  for (const sig of subkey.revocationSignatures) {
    try {
      await sig.verify(
        key.keyPacket,
        enums.signature.subkeyRevocation,
        { key: key.keyPacket, bind: subkey.keyPacket },
        NO_TIME_CHECK,
        false,
        OPENPGP_CONFIG,
      );
      return sig;
    } catch {
      // Not a valid revocation by the primary key: ignored.
    }
  }
  return null;
}

/** Turns openpgp.js's reason for "no valid signing key at that time" into a stable code; the message stays in the reason. */
async function classifyKeyFailure(e: unknown, c: KeyCheck, signerText: string): Promise<MethodReject> {
  const message = describeError(e);
  const at = iso(c.created);
  if (/expired/i.test(message)) {
    const primaryExpiry = await c.entry.key.getExpirationTime(undefined, OPENPGP_CONFIG).catch(() => null);
    return reject(
      'GPG_KEY_EXPIRED',
      `signature made at ${at}, when ${signerText} was expired (key expiry ${expiryText(primaryExpiry)}): ${message}`,
    );
  }
  if (/creation time is in the future/i.test(message)) {
    return reject(
      'GPG_KEY_NOT_YET_VALID',
      `${signerText} has no self-signature from before the signature time ${at} (the key was certified or re-certified later): ${message}`,
    );
  }
  if (/revoked/i.test(message)) return reject('GPG_KEY_REVOKED', `${signerText} is not valid at ${at}: ${message}`);
  if (/too weak|is disabled|insecure hash/i.test(message)) return reject('GPG_INSECURE_ALGORITHM', `${signerText}: ${message}`);
  return reject('GPG_KEY_INVALID', `${signerText} was not valid for signing at ${at}: ${message}`);
}
