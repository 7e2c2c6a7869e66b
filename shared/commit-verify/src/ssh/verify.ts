/**
 * SSHSIG commit-signature verification (OpenSSH PROTOCOL.sshsig) on node:crypto, with `git verify-commit` semantics:
 * git runs `ssh-keygen -Y verify -n git -f allowed_signers -I <principal> -Overify-time=<commit time>`.
 *
 * One deliberate difference: git asks `ssh-keygen -Y find-principals` which principals the key is listed for and
 * accepts if *any* of them verifies, so a key listed for bob@ "verifies" a commit whose committer is alice@. Here the
 * caller names the principal (the committer email), and a key listed only for someone else is SSH_SIGNER_NOT_ALLOWED.
 *
 * Other places where this is stricter than ssh-keygen (each is a rejection, never an acceptance): SSHSIG version must
 * be exactly 1, the reserved field must be empty, base64 must be canonical, RSA keys need 2048 bits
 * (SSH_KEY_TOO_WEAK), and certificates / security keys / DSA are refused with their own codes.
 */
import { constants, createHash, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject, VerifyKeyObjectInput } from 'node:crypto';
import type { MethodResult } from '../types.js';
import type { AllowedSigner } from './allowed-signers.js';
import { parsePublicKeyBlob } from './keys.js';
import type { SshPublicKey } from './keys.js';
import { matchPatternList } from './patterns.js';
import { SshWireError, WireReader, decodeBase64Strict, sshString } from './wire.js';

export interface SshVerifyInput {
  /** Exactly the signed bytes (for a commit: the raw object without its gpgsig header, see parseCommit). */
  payload: Uint8Array;
  /** The armored signature, "-----BEGIN SSH SIGNATURE-----" ... "-----END SSH SIGNATURE-----". */
  signature: string;
  allowedSigners: readonly AllowedSigner[];
  /** Who must have signed: the allowed_signers principal to check (git: the committer email). */
  principal: string;
  /** The instant key validity windows are checked at (git: the committer timestamp). */
  at: Date;
  /** Signature namespace; git signs commits and tags with 'git'. */
  namespace?: string;
}

/** Reject codes this verifier returns (stable, for policies and dashboards). */
export const SSH_REJECT_CODES = [
  'SSH_INPUT_INVALID',
  'SSH_SIGNATURE_MALFORMED',
  'SSH_SIGNATURE_VERSION_UNSUPPORTED',
  'SSH_NAMESPACE_MISMATCH',
  'SSH_HASH_ALGORITHM_UNSUPPORTED',
  'SSH_KEY_TYPE_UNSUPPORTED',
  'SSH_CERT_UNSUPPORTED',
  'SSH_KEY_TOO_WEAK',
  'SSH_RSA_SHA1_REJECTED',
  'SSH_SIGNATURE_ALGORITHM_UNSUPPORTED',
  'SSH_SIGNATURE_INVALID',
  'SSH_SIGNER_NOT_ALLOWED',
  'SSH_SIGNER_NAMESPACE_NOT_ALLOWED',
  'SSH_KEY_NOT_YET_VALID',
  'SSH_KEY_EXPIRED',
  'SSH_VERIFY_ERROR',
] as const;
export type SshRejectCode = (typeof SSH_REJECT_CODES)[number];

const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
const MAGIC = Buffer.from('SSHSIG', 'latin1');
/** Real signatures are a few KiB (a 16384-bit RSA one ~4.2 KiB); refuse absurd input before doing any work. */
const MAX_SIGNATURE_TEXT = 256 * 1024;
const MIN_RSA_BITS = 2048;
const RSA_SIG_HASH: Record<string, 'sha256' | 'sha512'> = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' };

class Reject extends Error {
  constructor(
    readonly code: SshRejectCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

function reject(code: SshRejectCode, reason: string): never {
  throw new Reject(code, reason);
}

/**
 * Armor as OpenSSH's sshsig_dearmor: header line, base64 body, "\n" + footer. Leading whitespace before the header
 * and whitespace after the footer are tolerated; inside the body only line breaks are (OpenSSH skips any isspace).
 */
function dearmor(text: string): Buffer {
  const t = text.replace(/^[ \t\r\n]+/, '');
  if (!t.startsWith(BEGIN)) reject('SSH_SIGNATURE_MALFORMED', `signature does not start with "${BEGIN}"`);
  let rest = t.slice(BEGIN.length);
  if (rest.startsWith('\r\n')) rest = rest.slice(2);
  else if (rest.startsWith('\n')) rest = rest.slice(1);
  else reject('SSH_SIGNATURE_MALFORMED', 'signature header is not followed by a line break');
  const end = rest.indexOf(`\n${END}`);
  if (end < 0) reject('SSH_SIGNATURE_MALFORMED', `signature has no "${END}" footer`);
  if (!/^[ \t\r\n]*$/.test(rest.slice(end + 1 + END.length))) reject('SSH_SIGNATURE_MALFORMED', 'signature has text after its footer');
  const blob = decodeBase64Strict(rest.slice(0, end).replace(/[\r\n]/g, ''));
  if (!blob) reject('SSH_SIGNATURE_MALFORMED', 'signature body is not canonical base64');
  return blob;
}

interface SshSig {
  publicKey: Buffer;
  namespace: Buffer;
  hashAlgorithm: string;
  signature: Buffer;
}

function parseSshSig(blob: Buffer): SshSig {
  const r = new WireReader(blob);
  if (blob.length < MAGIC.length || !blob.subarray(0, MAGIC.length).equals(MAGIC)) reject('SSH_SIGNATURE_MALFORMED', 'signature blob does not start with the SSHSIG magic');
  r.bytes(MAGIC.length, 'magic');
  const version = r.u32('version');
  if (version !== 1) reject('SSH_SIGNATURE_VERSION_UNSUPPORTED', `SSHSIG version ${version} is not supported (only 1)`);
  const publicKey = r.string('public key');
  const namespace = r.string('namespace');
  const reserved = r.string('reserved');
  const hashAlgorithm = r.text('hash algorithm');
  const signature = r.string('signature');
  r.end('SSHSIG blob');
  if (reserved.length !== 0) reject('SSH_SIGNATURE_MALFORMED', 'SSHSIG reserved field is not empty');
  return { publicKey, namespace, hashAlgorithm, signature };
}

/** Left-pads a big-endian magnitude to `size` bytes, or null when it does not fit. */
function leftPad(magnitude: Buffer, size: number): Buffer | null {
  if (magnitude.length > size) return null;
  return Buffer.concat([Buffer.alloc(size - magnitude.length), magnitude]);
}

/** Checks the inner signature blob against the key; returns a description of the algorithm used. */
function checkSignature(key: SshPublicKey, sigBlob: Buffer, signedData: Buffer): string {
  const keyObject = key.keyObject!;
  const r = new WireReader(sigBlob);
  const sigType = r.text('signature type');

  if (key.type === 'ssh-rsa') {
    if (sigType === 'ssh-rsa') reject('SSH_RSA_SHA1_REJECTED', 'legacy ssh-rsa signature (RSA with SHA-1) is not accepted; re-sign with rsa-sha2-512 or rsa-sha2-256');
    const hash = RSA_SIG_HASH[sigType];
    if (!hash) reject('SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', `RSA signature algorithm ${JSON.stringify(sigType)} is not accepted (rsa-sha2-512, rsa-sha2-256)`);
    const sig = r.string('rsa signature');
    r.end('rsa signature');
    const modBytes = Math.ceil(key.bits / 8);
    // Some signers drop leading zero bytes; RSA verification needs the modulus length (OpenSSH pads the same way).
    const padded = leftPad(sig, modBytes);
    if (!padded) reject('SSH_SIGNATURE_INVALID', 'RSA signature is longer than the modulus');
    if (!safeVerify(hash, signedData, { key: keyObject, padding: constants.RSA_PKCS1_PADDING }, padded)) {
      reject('SSH_SIGNATURE_INVALID', `${sigType} signature does not verify`);
    }
    return sigType;
  }

  if (sigType !== key.type) reject('SSH_SIGNATURE_ALGORITHM_UNSUPPORTED', `signature algorithm ${JSON.stringify(sigType)} does not belong to a ${key.type} key`);

  if (key.type === 'ssh-ed25519') {
    const sig = r.string('ed25519 signature');
    r.end('ed25519 signature');
    if (sig.length !== 64) reject('SSH_SIGNATURE_INVALID', `ed25519 signature is ${sig.length} bytes, not 64`);
    if (!safeVerify(null, signedData, keyObject, sig)) reject('SSH_SIGNATURE_INVALID', 'ssh-ed25519 signature does not verify');
    return sigType;
  }

  const curve = key.curve!;
  const inner = new WireReader(r.string('ecdsa signature'));
  r.end('ecdsa signature');
  const sr = inner.mpint('ecdsa r');
  const ss = inner.mpint('ecdsa s');
  inner.end('ecdsa r and s');
  const rPadded = leftPad(sr, curve.size);
  const sPadded = leftPad(ss, curve.size);
  if (!rPadded || !sPadded) reject('SSH_SIGNATURE_INVALID', 'ecdsa signature values are larger than the curve order');
  if (!safeVerify(curve.hash, signedData, { key: keyObject, dsaEncoding: 'ieee-p1363' }, Buffer.concat([rPadded, sPadded]))) {
    reject('SSH_SIGNATURE_INVALID', `${key.type} signature does not verify`);
  }
  return sigType;
}

function safeVerify(algorithm: string | null, data: Buffer, key: KeyObject | VerifyKeyObjectInput, signature: Buffer): boolean {
  try {
    return cryptoVerify(algorithm, data, key, signature);
  } catch {
    // OpenSSL refusing a signature encoding (e.g. r = 0) is an invalid signature, not an error.
    return false;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function where(s: AllowedSigner): string {
  return `${s.source}:${s.line}`;
}

/**
 * OpenSSH's sshsig_check_allowed_keys: the first line whose principals match, whose key is this (plain) key and
 * whose options permit the namespace and time wins. When none does, the first near miss explains why.
 */
function findSigner(signers: readonly AllowedSigner[], key: SshPublicKey, principal: string, namespace: string, atSeconds: number): { signer: AllowedSigner; evidence: string[] } {
  const forPrincipal = signers.filter((s) => matchPatternList(principal, s.principals) === 1);
  const sameKey = (s: AllowedSigner): boolean => bytesEqual(s.publicKey, key.blob);
  const keyLines = forPrincipal.filter((s) => !s.certAuthority && sameKey(s));
  if (keyLines.length === 0) {
    const elsewhere = signers.filter((s) => !s.certAuthority && sameKey(s)).map(where);
    const asCa = forPrincipal.filter((s) => s.certAuthority && sameKey(s)).map(where);
    let reason = forPrincipal.length === 0 ? `principal ${JSON.stringify(principal)} is not listed in allowed signers` : `key ${key.fingerprint} is not listed for principal ${JSON.stringify(principal)}`;
    if (asCa.length > 0) reason += ` (only as a cert-authority at ${asCa.join(', ')})`;
    else if (elsewhere.length > 0) reason += ` (the key is listed for other principals at ${elsewhere.join(', ')})`;
    reject('SSH_SIGNER_NOT_ALLOWED', reason);
  }
  let miss: Reject | undefined;
  for (const s of keyLines) {
    const evidence: string[] = [];
    if (s.namespaces !== undefined) {
      if (matchPatternList(namespace, s.namespaces) !== 1) {
        miss ??= new Reject('SSH_SIGNER_NAMESPACE_NOT_ALLOWED', `${where(s)}: key is not permitted for namespace ${JSON.stringify(namespace)} (namespaces="${s.namespaces.join(',')}")`);
        continue;
      }
      evidence.push(`namespace "${namespace}" permitted by namespaces="${s.namespaces.join(',')}"`);
    }
    const at = new Date(atSeconds * 1000).toISOString();
    if (s.validAfter !== undefined && atSeconds < Math.floor(s.validAfter.getTime() / 1000)) {
      miss ??= new Reject('SSH_KEY_NOT_YET_VALID', `${where(s)}: key is not yet valid at ${at} (valid-after ${s.validAfter.toISOString()})`);
      continue;
    }
    if (s.validBefore !== undefined && atSeconds > Math.floor(s.validBefore.getTime() / 1000)) {
      miss ??= new Reject('SSH_KEY_EXPIRED', `${where(s)}: key has expired at ${at} (valid-before ${s.validBefore.toISOString()})`);
      continue;
    }
    if (s.validAfter !== undefined || s.validBefore !== undefined) {
      evidence.push(`key valid at ${at} (${s.validAfter ? `valid-after ${s.validAfter.toISOString()}` : ''}${s.validAfter && s.validBefore ? ', ' : ''}${s.validBefore ? `valid-before ${s.validBefore.toISOString()}` : ''})`);
    }
    return { signer: s, evidence };
  }
  throw miss!;
}

function verifyOrThrow(input: SshVerifyInput): MethodResult {
  const namespace = input.namespace ?? 'git';
  if (typeof namespace !== 'string' || namespace === '') reject('SSH_INPUT_INVALID', 'namespace must be a non-empty string');
  if (typeof input.principal !== 'string' || input.principal === '') reject('SSH_INPUT_INVALID', 'principal must be a non-empty string');
  if (!(input.at instanceof Date) || Number.isNaN(input.at.getTime())) reject('SSH_INPUT_INVALID', 'verification time is not a valid date');
  if (!(input.payload instanceof Uint8Array)) reject('SSH_INPUT_INVALID', 'payload must be bytes');
  if (typeof input.signature !== 'string') reject('SSH_INPUT_INVALID', 'signature must be a string');
  if (!Array.isArray(input.allowedSigners)) reject('SSH_INPUT_INVALID', 'allowedSigners must be an array');
  if (input.signature.length > MAX_SIGNATURE_TEXT) reject('SSH_SIGNATURE_MALFORMED', `signature text is larger than ${MAX_SIGNATURE_TEXT} characters`);

  const sig = parseSshSig(dearmor(input.signature));
  if (!sig.namespace.equals(Buffer.from(namespace, 'utf8'))) {
    reject('SSH_NAMESPACE_MISMATCH', `signature namespace ${JSON.stringify(sig.namespace.toString('latin1'))} is not ${JSON.stringify(namespace)}`);
  }
  if (sig.hashAlgorithm !== 'sha512' && sig.hashAlgorithm !== 'sha256') {
    reject('SSH_HASH_ALGORITHM_UNSUPPORTED', `SSHSIG hash algorithm ${JSON.stringify(sig.hashAlgorithm)} is not supported (sha512, sha256)`);
  }
  const key = parsePublicKeyBlob(sig.publicKey);
  if (key.unsupported) reject(key.unsupported.code, key.unsupported.reason);
  if (key.type === 'ssh-rsa' && key.bits < MIN_RSA_BITS) reject('SSH_KEY_TOO_WEAK', `RSA key ${key.fingerprint} has ${key.bits} bits; at least ${MIN_RSA_BITS} are required`);

  // PROTOCOL.sshsig: the key signs MAGIC || string(namespace) || string(reserved) || string(hashalg) || string(H(m)).
  const digest = createHash(sig.hashAlgorithm).update(input.payload).digest();
  const signedData = Buffer.concat([MAGIC, sshString(Buffer.from(namespace, 'utf8')), sshString(''), sshString(sig.hashAlgorithm), sshString(digest)]);
  const algorithm = checkSignature(key, sig.signature, signedData);

  const atSeconds = Math.floor(input.at.getTime() / 1000);
  const match = findSigner(input.allowedSigners, key, input.principal, namespace, atSeconds);
  return {
    ok: true,
    method: 'ssh',
    signer: { identity: input.principal, keyFingerprint: key.fingerprint },
    evidence: [
      `SSHSIG v1 signature, namespace "${namespace}", ${sig.hashAlgorithm} digest of ${input.payload.byteLength} payload bytes`,
      `${algorithm} signature verifies with ${key.type} key ${key.fingerprint}${key.type === 'ssh-rsa' ? ` (${key.bits} bits)` : ''}`,
      `${where(match.signer)} lists the key for principal ${JSON.stringify(input.principal)} (patterns "${match.signer.principals.join(',')}")`,
      ...match.evidence,
    ],
  };
}

/**
 * Verifies an SSH (SSHSIG) signature over `payload` for `principal`, as `git verify-commit` would with
 * `gpg.ssh.allowedSignersFile` (see the module comment for where it is stricter). Pure and synchronous; never throws.
 */
export function verifySshCommitSignature(input: SshVerifyInput): MethodResult {
  try {
    return verifyOrThrow(input);
  } catch (e) {
    if (e instanceof Reject) return { ok: false, method: 'ssh', code: e.code, reason: e.reason };
    if (e instanceof SshWireError) return { ok: false, method: 'ssh', code: 'SSH_SIGNATURE_MALFORMED', reason: `malformed signature: ${e.message}` };
    // Unreachable for well-typed input; a verifier must still answer, and "no" is the only safe answer.
    return { ok: false, method: 'ssh', code: 'SSH_VERIFY_ERROR', reason: `verification failed unexpectedly: ${e instanceof Error ? e.message : String(e)}` };
  }
}
