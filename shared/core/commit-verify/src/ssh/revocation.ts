/**
 * Revoked SSH keys and certificates, as `ssh-keygen -Y verify -r FILE` (git's gpg.ssh.revocationFile) reads them:
 * either an OpenSSH KRL (PROTOCOL.krl, made by `ssh-keygen -k`) or a plain list of public keys, one per line.
 *
 * A revoked key verifies nothing, whatever the signature's date: the signature time is the signer's claim. What a
 * list revokes (OpenSSH's ssh_krl_check_key and sshkey_in_file with check_ca):
 * - a listed key revokes signatures by that key, also when it signs through a certificate;
 * - a listed CA key revokes every certificate it issued;
 * - KRL certificate sections revoke serials (list, range, bitmap) and key ids issued by one CA (or any CA).
 */
import { createHash } from 'node:crypto';
import { BaseError } from '@gitops-gate/contracts/errors';
import { parseKeyText, parsePublicKeyBlob } from './keys.js';
import type { SshPublicKey } from './keys.js';
import { SshWireError, WireReader, decodeBase64Strict } from './wire.js';

export const SSH_REVOCATION_ERROR_CODES = ['SSH_REVOCATION_LIST_INVALID'] as const;
export type SshRevocationErrorCode = (typeof SSH_REVOCATION_ERROR_CODES)[number];
export class SshRevocationListError extends BaseError<SshRevocationErrorCode> {}

const KRL_MAGIC = Buffer.from('SSHKRL\n\0', 'latin1');

interface CertRevocations {
  /** Canonical CA key blob (hex), or null: the section applies to certificates of every CA. */
  ca: string | null;
  caFingerprint: string;
  serials: { min: bigint; max: bigint }[];
  bitmaps: { offset: bigint; bitmap: Buffer }[];
  keyIds: Set<string>;
}

export interface SshRevocationList {
  source: string;
  format: 'krl' | 'keys';
  /** Canonical plain key blobs (hex). */
  keys: Set<string>;
  sha1: Set<string>;
  sha256: Set<string>;
  certs: CertRevocations[];
}

function empty(source: string, format: SshRevocationList['format']): SshRevocationList {
  return { source, format, keys: new Set(), sha1: new Set(), sha256: new Set(), certs: [] };
}

function fail(source: string, what: string): never {
  throw new SshRevocationListError('SSH_REVOCATION_LIST_INVALID', `${source}: ${what}`);
}

function parseCertSection(data: Buffer, source: string): CertRevocations {
  const r = new WireReader(data);
  const caBlob = r.string('ca key');
  r.string('reserved');
  let ca: string | null = null;
  let caFingerprint = 'any CA';
  if (caBlob.length > 0) {
    const key = parsePublicKeyBlob(caBlob);
    if (key.cert) fail(source, 'a KRL certificate section names a certificate as its CA');
    ca = key.blob.toString('hex');
    caFingerprint = key.fingerprint;
  }
  const out: CertRevocations = { ca, caFingerprint, serials: [], bitmaps: [], keyIds: new Set() };
  while (r.remaining > 0) {
    const type = r.bytes(1, 'certificate subsection type')[0]!;
    const sub = new WireReader(r.string('certificate subsection'));
    if (type === 0x20) {
      while (sub.remaining > 0) {
        const s = sub.bytes(8, 'serial').readBigUInt64BE(0);
        out.serials.push({ min: s, max: s });
      }
    } else if (type === 0x21) {
      const min = sub.bytes(8, 'serial min').readBigUInt64BE(0);
      const max = sub.bytes(8, 'serial max').readBigUInt64BE(0);
      sub.end('serial range');
      if (max < min) fail(source, `KRL serial range ${min}-${max} is reversed`);
      out.serials.push({ min, max });
    } else if (type === 0x22) {
      const offset = sub.bytes(8, 'bitmap offset').readBigUInt64BE(0);
      out.bitmaps.push({ offset, bitmap: Buffer.from(sub.mpint('serial bitmap')) });
      sub.end('serial bitmap');
    } else if (type === 0x23) {
      while (sub.remaining > 0) out.keyIds.add(sub.text('key id'));
    } else if (type === 0x39) {
      const name = sub.text('extension name');
      if (sub.bytes(1, 'extension criticality')[0] !== 0)
        fail(source, `KRL has unsupported critical certificate extension ${JSON.stringify(name)}`);
    } else {
      fail(source, `KRL has unknown certificate subsection type 0x${type.toString(16)}`);
    }
  }
  return out;
}

function parseKrl(data: Buffer, source: string): SshRevocationList {
  const out = empty(source, 'krl');
  const r = new WireReader(data);
  r.bytes(KRL_MAGIC.length, 'magic');
  const version = r.u32('format version');
  if (version !== 1) fail(source, `KRL format version ${version} is not supported (only 1)`);
  r.bytes(24, 'krl version, date and flags');
  r.string('reserved');
  r.string('comment');
  while (r.remaining > 0) {
    const type = r.bytes(1, 'section type')[0]!;
    if (type === 4) fail(source, 'signed KRLs are not supported (the policy that carries the list is what is trusted)');
    const section = r.string('section');
    const s = new WireReader(section);
    if (type === 1) out.certs.push(parseCertSection(section, source));
    else if (type === 2) {
      while (s.remaining > 0) {
        const key = parsePublicKeyBlob(s.string('revoked key'));
        out.keys.add((key.cert?.key ?? key).blob.toString('hex'));
      }
    } else if (type === 3 || type === 5) {
      const set = type === 3 ? out.sha1 : out.sha256;
      while (s.remaining > 0) set.add(s.string('revoked key hash').toString('hex'));
    } else if (type === 255) {
      const name = s.text('extension name');
      if (s.bytes(1, 'extension criticality')[0] !== 0) fail(source, `KRL has unsupported critical extension ${JSON.stringify(name)}`);
    } else {
      fail(source, `KRL has unknown section type ${type}`);
    }
  }
  return out;
}

function parseKeyList(text: string, source: string): SshRevocationList {
  const out = empty(source, 'keys');
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      const { key } = parseKeyText(line);
      // A listed certificate revokes its key (sshkey_in_file compares public parts, not certificate bodies).
      out.keys.add((key.cert?.key ?? key).blob.toString('hex'));
    } catch (e) {
      fail(source, `line ${i + 1}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Parses a revocation list: KRL bytes, a KRL as base64 text (how a GatePolicy carries it), or a plain public-key list.
 * Throws SshRevocationListError naming the source and what is wrong.
 */
export function parseRevocationList(data: Uint8Array | string, source = 'revoked keys'): SshRevocationList {
  let bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (!bytes.subarray(0, KRL_MAGIC.length).equals(KRL_MAGIC)) {
    const decoded = decodeBase64Strict(bytes.toString('latin1').replace(/\s+/g, ''));
    if (decoded?.subarray(0, KRL_MAGIC.length).equals(KRL_MAGIC)) bytes = decoded;
  }
  try {
    if (bytes.subarray(0, KRL_MAGIC.length).equals(KRL_MAGIC)) return parseKrl(bytes, source);
  } catch (e) {
    if (e instanceof SshWireError) fail(source, `malformed KRL: ${e.message}`);
    throw e;
  }
  if (bytes.includes(0)) fail(source, 'neither an OpenSSH KRL nor a text list of public keys');
  return parseKeyList(bytes.toString('utf8'), source);
}

function serialRevoked(c: CertRevocations, serial: bigint): boolean {
  if (c.serials.some((s) => serial >= s.min && serial <= s.max)) return true;
  return c.bitmaps.some(({ offset, bitmap }) => {
    if (serial < offset) return false;
    const bit = serial - offset;
    const byteFromEnd = Number(bit / 8n);
    if (byteFromEnd >= bitmap.length) return false;
    return ((bitmap[bitmap.length - 1 - byteFromEnd]! >> Number(bit % 8n)) & 1) === 1;
  });
}

function plainKeyRevoked(list: SshRevocationList, key: SshPublicKey): boolean {
  if (list.keys.has(key.blob.toString('hex'))) return true;
  return (
    list.sha256.has(createHash('sha256').update(key.blob).digest('hex')) || list.sha1.has(createHash('sha1').update(key.blob).digest('hex'))
  );
}

/** Why `key` (a plain key or a certificate) is revoked by `list`, or undefined when it is not. */
export function revocationOf(list: SshRevocationList, key: SshPublicKey): string | undefined {
  const cert = key.cert;
  const signing = cert?.key ?? key;
  if (plainKeyRevoked(list, signing)) return `key ${signing.fingerprint} is revoked by ${list.source}`;
  if (!cert) return undefined;
  if (plainKeyRevoked(list, cert.signatureKey)) return `certificate CA ${cert.signatureKey.fingerprint} is revoked by ${list.source}`;
  const ca = cert.signatureKey.blob.toString('hex');
  for (const c of list.certs) {
    if (c.ca !== null && c.ca !== ca) continue;
    // OpenSSH ignores serial 0 here: it is what a CA writes when it does not number its certificates.
    if (cert.serial !== 0n && serialRevoked(c, cert.serial))
      return `certificate serial ${cert.serial} of CA ${cert.signatureKey.fingerprint} is revoked by ${list.source} (${c.caFingerprint})`;
    if (c.keyIds.has(cert.keyId))
      return `certificate key id ${JSON.stringify(cert.keyId)} is revoked by ${list.source} (${c.caFingerprint})`;
  }
  return undefined;
}
