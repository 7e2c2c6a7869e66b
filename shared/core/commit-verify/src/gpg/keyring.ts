import * as openpgp from 'openpgp';
import type { Key, PublicKey, SignaturePacket } from 'openpgp';
import { CommitVerifyError } from '../types.js';
import { OPENPGP_CONFIG } from './config.js';
import { repairKeyQuickChecks, repairRevocationQuickCheck, type QuickCheckRepair } from './quick-check.js';

const { enums } = openpgp;

/**
 * openpgp.js skips every time-dependent check when given `null` as the date (its `normalizeDate` passes null through),
 * which is what loading needs: a key is loaded once and then judged at each signature's own creation time. Its type
 * declarations only say `Date`, hence the cast, kept in one place.
 */
export const NO_TIME_CHECK = null as unknown as Date;

/** Key files are a few KiB; the cap keeps a misconfigured path (a binary, a log) from stalling startup. */
const MAX_KEY_TEXT_CHARS = 1024 * 1024;

export interface GpgKeyringEntry {
  /** Primary key fingerprint, lower-case hex. */
  readonly fingerprint: string;
  /** The parsed public key (quick-check octets normalised, see quick-check.ts; revocation certificates merged in). */
  readonly key: PublicKey;
  /** Facts about how this key was loaded, carried into the evidence of every signature it verifies. */
  readonly notes: readonly string[];
}

/** Parsed public keys, by fingerprint and key id. Only `createGpgKeyring` makes these; verifiers refuse other objects. */
export interface GpgKeyring {
  /** By primary fingerprint (lower-case hex). */
  readonly byFingerprint: ReadonlyMap<string, GpgKeyringEntry>;
  /** By 16-hex-digit key id (lower-case) of the primary key and of each subkey; a colliding id lists every holder. */
  readonly byKeyId: ReadonlyMap<string, readonly GpgKeyringEntry[]>;
}

const KEYRINGS = new WeakSet<object>();

/** True only for keyrings built by `createGpgKeyring` (so every key in it went through loading checks). */
export function isGpgKeyring(value: unknown): value is GpgKeyring {
  return typeof value === 'object' && value !== null && KEYRINGS.has(value);
}

export function describeError(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

function invalid(label: string, message: string): CommitVerifyError {
  return new CommitVerifyError('GPG_KEY_INVALID', `${label}: ${message}`);
}

function describeRepairs(repairs: QuickCheckRepair[]): string[] {
  return repairs.map(
    (r) =>
      `signature type 0x${r.signatureType.toString(16).padStart(2, '0')} in the key carries wrong quick-check octets ` +
      `${r.stored} (digest starts ${r.computed}); ignored as gpg does, the full signature was verified`,
  );
}

/** A revocation certificate is an armored "public key block" that holds only key revocation signatures. */
async function readRevocationCertificate(text: string): Promise<SignaturePacket[] | null> {
  try {
    // Armor given as a string unarmors to bytes (a stream only for stream input); the typings name an external Stream type.
    const { type, data } = (await openpgp.unarmor(text, OPENPGP_CONFIG)) as { type: openpgp.enums.armor; data: Uint8Array };
    if (type !== enums.armor.publicKey) return null;
    // At runtime openpgp.js wants a plain tag->class object here, although its typings say Map.
    const allowed = { [enums.packet.signature]: openpgp.SignaturePacket } as unknown as Parameters<typeof openpgp.PacketList.fromBinary>[1];
    const packets = await openpgp.PacketList.fromBinary(data, allowed, OPENPGP_CONFIG);
    const sigs = packets.filter((p): p is SignaturePacket => p instanceof openpgp.SignaturePacket);
    if (sigs.length === 0 || sigs.length !== packets.length) return null;
    if (sigs.some((s) => s.signatureType !== enums.signature.keyRevocation)) return null;
    return sigs;
  } catch {
    return null;
  }
}

/** Is any of the key's own revocation signatures valid (any reason, any time: see verify.ts for why)? */
export async function findKeyRevocation(key: Key): Promise<SignaturePacket | null> {
  for (const sig of key.revocationSignatures) {
    try {
      await sig.verify(key.keyPacket, enums.signature.keyRevocation, { key: key.keyPacket }, NO_TIME_CHECK, false, OPENPGP_CONFIG);
      return sig;
    } catch {
      // Not a valid revocation by this key: ignored, as gpg does.
    }
  }
  return null;
}

/**
 * Load-time checks catch configuration mistakes early: a corrupted or foreign file, or a primary key of an algorithm
 * or size that would make every signature fail. Whether a (sub)key could sign at a given moment (expiry, usage flags,
 * revoked subkeys) is judged per signature, so a key whose subkeys are all revoked still loads and its commits get a
 * precise GPG_KEY_REVOKED instead of a keyring that cannot be built.
 */
async function checkPrimaryKey(key: Key, label: string): Promise<void> {
  const fpr = key.getFingerprint();
  const info = key.getAlgorithmInfo();
  const algorithm = key.keyPacket.algorithm;
  if (OPENPGP_CONFIG.rejectPublicKeyAlgorithms.has(algorithm)) {
    throw invalid(label, `key ${fpr} uses ${info.algorithm}, which is not accepted`);
  }
  const rsa = [enums.publicKey.rsaEncryptSign, enums.publicKey.rsaSign, enums.publicKey.rsaEncrypt];
  if (rsa.includes(algorithm) && (info.bits ?? 0) < OPENPGP_CONFIG.minRSABits) {
    throw invalid(label, `key ${fpr} is ${info.bits ?? '?'}-bit RSA; at least ${OPENPGP_CONFIG.minRSABits} bits are required`);
  }
  if (info.curve !== undefined && OPENPGP_CONFIG.rejectCurves.has(info.curve as openpgp.enums.curve)) {
    throw invalid(label, `key ${fpr} uses curve ${info.curve}, which is not accepted`);
  }
  // A revoked key is kept: verification must be able to say "revoked" rather than "unknown key".
  if (await findKeyRevocation(key)) return;
  try {
    await key.verifyPrimaryKey(NO_TIME_CHECK, undefined, OPENPGP_CONFIG);
  } catch (e) {
    throw invalid(label, `key ${fpr} has no valid self-signature: ${describeError(e)}`);
  }
}

interface MutableEntry {
  fingerprint: string;
  key: PublicKey;
  notes: string[];
}

/**
 * Parses armored OpenPGP public keys (one or more per text, as `gpg --armor --export` writes them) and armored key
 * revocation certificates (as gpg stores them in openpgp-revocs.d, with the safety colon removed) into a keyring.
 * The same key given twice is merged, as `gpg --import` would. Throws CommitVerifyError('GPG_KEY_INVALID') naming the
 * offending input: unreadable text, a secret key, a key without a valid self-signature or of a rejected algorithm or
 * size, a revocation certificate for a key not given or that does not verify.
 */
export async function createGpgKeyring(armoredKeys: string[]): Promise<GpgKeyring> {
  if (!Array.isArray(armoredKeys)) {
    throw new CommitVerifyError('GPG_KEY_INVALID', 'armoredKeys must be an array of armored OpenPGP public key texts');
  }
  const entries = new Map<string, MutableEntry>();
  const revocations: { label: string; sig: SignaturePacket }[] = [];

  for (const [i, text] of armoredKeys.entries()) {
    const label = `armoredKeys[${i}]`;
    if (typeof text !== 'string' || text.trim() === '') throw invalid(label, 'is empty or not a string');
    if (text.length > MAX_KEY_TEXT_CHARS) throw invalid(label, `is larger than ${MAX_KEY_TEXT_CHARS} characters`);
    let keys: Key[];
    try {
      keys = await openpgp.readKeys({ armoredKeys: text, config: OPENPGP_CONFIG });
    } catch (e) {
      const revocationSigs = await readRevocationCertificate(text);
      if (revocationSigs) {
        for (const sig of revocationSigs) revocations.push({ label, sig });
        continue;
      }
      const hint = /^:-----BEGIN PGP PUBLIC KEY BLOCK-----/m.test(text)
        ? ' (this looks like a gpg revocation certificate: remove the colon before "-----BEGIN" to use it)'
        : '';
      throw invalid(label, `is not a readable armored OpenPGP public key: ${describeError(e)}${hint}`);
    }
    if (keys.length === 0) throw invalid(label, 'contains no key');
    for (const key of keys) {
      if (key.isPrivate()) {
        throw invalid(label, `key ${key.getFingerprint()} is a secret key; give the gate public keys only`);
      }
      const repairs = await repairKeyQuickChecks(key);
      await checkPrimaryKey(key, label);
      const fingerprint = key.getFingerprint().toLowerCase();
      const notes = describeRepairs(repairs);
      const existing = entries.get(fingerprint);
      if (existing) {
        try {
          existing.key = await existing.key.update(key, NO_TIME_CHECK, OPENPGP_CONFIG);
        } catch (e) {
          throw invalid(label, `key ${fingerprint} could not be merged with its earlier copy: ${describeError(e)}`);
        }
        existing.notes.push(...notes);
      } else {
        entries.set(fingerprint, { fingerprint, key: key, notes });
      }
    }
  }

  // Revocation certificates may come before or after their key in the list, so they are applied last.
  for (const { label, sig } of revocations) {
    const keyId = sig.issuerKeyID.toHex().toLowerCase();
    const issuerFpr = sig.issuerFingerprint ? Buffer.from(sig.issuerFingerprint).toString('hex') : null;
    const targets = [...entries.values()].filter(
      (e) => e.key.getKeyID().toHex().toLowerCase() === keyId && (issuerFpr === null || e.fingerprint === issuerFpr),
    );
    if (targets.length === 0) {
      throw invalid(label, `is a revocation certificate for key ${issuerFpr ?? keyId}, which is not among the given keys`);
    }
    let applied = false;
    for (const target of targets) {
      const repairs = await repairRevocationQuickCheck(sig, target.key);
      try {
        await sig.verify(
          target.key.keyPacket,
          enums.signature.keyRevocation,
          { key: target.key.keyPacket },
          NO_TIME_CHECK,
          false,
          OPENPGP_CONFIG,
        );
      } catch {
        continue;
      }
      target.key.revocationSignatures.push(sig);
      target.notes.push(...describeRepairs(repairs), `revocation certificate from ${label} applied`);
      applied = true;
    }
    if (!applied) throw invalid(label, `revocation certificate does not verify against key ${issuerFpr ?? keyId}`);
  }

  const byFingerprint = new Map<string, GpgKeyringEntry>();
  const byKeyId = new Map<string, GpgKeyringEntry[]>();
  for (const e of entries.values()) {
    const entry: GpgKeyringEntry = Object.freeze({ fingerprint: e.fingerprint, key: e.key, notes: Object.freeze([...e.notes]) });
    byFingerprint.set(entry.fingerprint, entry);
    for (const id of e.key.getKeyIDs()) {
      const hex = id.toHex().toLowerCase();
      const list = byKeyId.get(hex) ?? [];
      if (!list.includes(entry)) list.push(entry);
      byKeyId.set(hex, list);
    }
  }
  const keyring: GpgKeyring = Object.freeze({ byFingerprint, byKeyId });
  KEYRINGS.add(keyring);
  return keyring;
}
