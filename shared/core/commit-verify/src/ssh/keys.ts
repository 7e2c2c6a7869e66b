/**
 * SSH public keys: wire-blob parsing into node:crypto KeyObjects, canonical re-encoding and SHA256 fingerprints.
 *
 * Keys are compared and fingerprinted by their canonical re-encoding (as OpenSSH does after parsing), so two
 * encodings of one key are one key, and a fingerprint here equals `ssh-keygen -lf`.
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CommitVerifyError } from '../types.js';
import { SshWireError, WireReader, base64NoPad, decodeBase64Strict, sshMpint, sshString } from './wire.js';

export interface EcCurve {
  /** SSH curve identifier inside the key blob. */
  sshName: 'nistp256' | 'nistp384' | 'nistp521';
  jwkCurve: 'P-256' | 'P-384' | 'P-521';
  /** The digest ECDSA uses for this curve in SSH (RFC 5656 §6.2.1). */
  hash: 'sha256' | 'sha384' | 'sha512';
  /** Bytes of one field element / one scalar. */
  size: number;
}

const EC_CURVES: Record<string, EcCurve> = {
  'ecdsa-sha2-nistp256': { sshName: 'nistp256', jwkCurve: 'P-256', hash: 'sha256', size: 32 },
  'ecdsa-sha2-nistp384': { sshName: 'nistp384', jwkCurve: 'P-384', hash: 'sha384', size: 48 },
  'ecdsa-sha2-nistp521': { sshName: 'nistp521', jwkCurve: 'P-521', hash: 'sha512', size: 66 },
};

/**
 * Key types OpenSSH knows but this verifier does not verify. They are still recognised so an allowed_signers file
 * listing them loads (the entries simply never match), and a signature made with one gets a precise rejection.
 */
const KNOWN_UNSUPPORTED = new Set(['ssh-dss', 'webauthn-sk-ecdsa-sha2-nistp256@openssh.com', 'ssh-xmss@openssh.com']);

export const SK_ED25519 = 'sk-ssh-ed25519@openssh.com';
export const SK_ECDSA = 'sk-ecdsa-sha2-nistp256@openssh.com';

const CERT_SUFFIX = '-cert-v01@openssh.com';

/** The plain key type a certificate type certifies ('ssh-ed25519-cert-v01@openssh.com' -> 'ssh-ed25519'). */
export function plainTypeOfCert(certType: string): string | undefined {
  if (!certType.endsWith(CERT_SUFFIX)) return undefined;
  const base = certType.slice(0, -CERT_SUFFIX.length);
  return base.startsWith('sk-') ? `${base}@openssh.com` : base;
}

export type SshKeyUnsupportedCode = 'SSH_KEY_TYPE_UNSUPPORTED' | 'SSH_CERT_UNSUPPORTED';

export interface SshPublicKey {
  /** Key type name from the blob, e.g. 'ssh-ed25519'. */
  type: string;
  /** Canonical wire encoding (the raw blob for types we only recognise). */
  blob: Buffer;
  /** 'SHA256:' + unpadded base64 of sha256(blob), like `ssh-keygen -lf`. */
  fingerprint: string;
  /** Modulus bits (RSA), curve bits (ECDSA), 256 (Ed25519), 0 when unknown. */
  bits: number;
  /** Set when signatures by this key cannot be verified here. */
  unsupported?: { code: SshKeyUnsupportedCode; reason: string };
  /** Set exactly when `unsupported` is not. */
  keyObject?: KeyObject;
  /** ECDSA keys only (sk-ecdsa included). */
  curve?: EcCurve;
  /** Security-key (sk-*) keys only: the FIDO application (relying party id) the key was made for, e.g. "ssh:". */
  application?: string;
  /** OpenSSH certificates only (`*-cert-v01@openssh.com`); `fingerprint` is then the certified key's, as ssh-keygen prints. */
  cert?: SshCertificate;
}

/** An OpenSSH certificate (PROTOCOL.certkeys), parsed; its CA signature is checked by certificate.ts, not here. */
export interface SshCertificate {
  /** The certified (plain) key: the one that makes signatures. */
  key: SshPublicKey;
  serial: bigint;
  /** 1 = user, 2 = host. */
  certType: number;
  keyId: string;
  principals: string[];
  /** Seconds since the epoch; validBefore 2^64-1 means forever. */
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: { name: string; data: Buffer }[];
  extensions: string[];
  /** The CA (plain) key, parsed. */
  signatureKey: SshPublicKey;
  /** The bytes the CA signed: the certificate blob up to and including the signature key. */
  signedPart: Buffer;
  /** The CA's signature blob (string sigtype || sigdata). */
  signature: Buffer;
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

function bitLength(magnitude: Buffer): number {
  if (magnitude.length === 0) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}

function fingerprintOf(blob: Uint8Array): string {
  return `SHA256:${base64NoPad(createHash('sha256').update(blob).digest())}`;
}

function importKey(jwk: Record<string, string>, what: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    // OpenSSL refuses e.g. points that are not on the curve; that is a malformed key, not a crash.
    throw new SshWireError(`${what} is not a valid public key (${(e as Error).message})`);
  }
}

/**
 * Parses an SSH public key blob. Throws SshWireError when the blob is malformed; returns a key with `unsupported`
 * set for well-formed keys of types we do not verify (certificates, security keys, DSA, unknown names).
 */
export function parsePublicKeyBlob(blob: Uint8Array): SshPublicKey {
  const raw = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const r = new WireReader(raw);
  const type = r.text('key type');

  if (type === 'ssh-ed25519') {
    const pk = r.string('ed25519 public key');
    r.end('ed25519 key');
    if (pk.length !== 32) throw new SshWireError(`ed25519 public key is ${pk.length} bytes, not 32`);
    const canonical = Buffer.concat([sshString(type), sshString(pk)]);
    return {
      type,
      blob: canonical,
      fingerprint: fingerprintOf(canonical),
      bits: 256,
      keyObject: importKey({ kty: 'OKP', crv: 'Ed25519', x: b64url(pk) }, 'ed25519 key'),
    };
  }

  const curve = EC_CURVES[type];
  if (curve) {
    const curveName = r.text('ecdsa curve name');
    const point = r.string('ecdsa public point');
    r.end('ecdsa key');
    if (curveName !== curve.sshName) throw new SshWireError(`ecdsa key type ${type} carries curve ${curveName}`);
    // Only the uncompressed form: it is what every SSH implementation writes, and the only one OpenSSH re-encodes to.
    if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04)
      throw new SshWireError(`ecdsa public point is not an uncompressed ${curve.sshName} point`);
    const x = point.subarray(1, 1 + curve.size);
    const y = point.subarray(1 + curve.size);
    const canonical = Buffer.concat([sshString(type), sshString(curve.sshName), sshString(point)]);
    return {
      type,
      blob: canonical,
      fingerprint: fingerprintOf(canonical),
      bits: curve.size === 66 ? 521 : curve.size * 8,
      curve,
      keyObject: importKey({ kty: 'EC', crv: curve.jwkCurve, x: b64url(x), y: b64url(y) }, 'ecdsa key'),
    };
  }

  if (type === SK_ED25519) {
    const pk = r.string('sk-ed25519 public key');
    const application = r.text('sk application');
    r.end('sk-ed25519 key');
    if (pk.length !== 32) throw new SshWireError(`sk-ed25519 public key is ${pk.length} bytes, not 32`);
    const canonical = Buffer.concat([sshString(type), sshString(pk), sshString(application)]);
    return {
      type,
      blob: canonical,
      fingerprint: fingerprintOf(canonical),
      bits: 256,
      application,
      keyObject: importKey({ kty: 'OKP', crv: 'Ed25519', x: b64url(pk) }, 'sk-ed25519 key'),
    };
  }

  if (type === SK_ECDSA) {
    const curve = EC_CURVES['ecdsa-sha2-nistp256']!;
    const curveName = r.text('ecdsa curve name');
    const point = r.string('ecdsa public point');
    const application = r.text('sk application');
    r.end('sk-ecdsa key');
    if (curveName !== curve.sshName) throw new SshWireError(`sk-ecdsa key carries curve ${curveName}, not nistp256`);
    if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04)
      throw new SshWireError('sk-ecdsa public point is not an uncompressed nistp256 point');
    const canonical = Buffer.concat([sshString(type), sshString(curveName), sshString(point), sshString(application)]);
    return {
      type,
      blob: canonical,
      fingerprint: fingerprintOf(canonical),
      bits: 256,
      curve,
      application,
      keyObject: importKey(
        { kty: 'EC', crv: curve.jwkCurve, x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) },
        'sk-ecdsa key',
      ),
    };
  }

  const certified = plainTypeOfCert(type);
  if (certified !== undefined && CERT_KEY_FIELDS[certified] !== undefined) return parseCertificate(raw, r, type, certified);

  if (type === 'ssh-rsa') {
    const e = r.mpint('rsa exponent');
    const n = r.mpint('rsa modulus');
    r.end('rsa key');
    const bits = bitLength(n);
    // OpenSSH's own bounds (SSH_RSA_MINIMUM_MODULUS_SIZE, SSHBUF_MAX_BIGNUM); our stricter signing policy is applied
    // by the verifier so that allowed_signers files with old keys still load.
    if (bits < 1024) throw new SshWireError(`rsa modulus of ${bits} bits is below OpenSSH's 1024-bit minimum`);
    if (bits > 16384) throw new SshWireError(`rsa modulus of ${bits} bits is above OpenSSH's 16384-bit maximum`);
    if (e.length === 0 || (e[e.length - 1]! & 1) === 0 || (e.length === 1 && e[0] === 1))
      throw new SshWireError('rsa exponent is not an odd number above 1');
    const canonical = Buffer.concat([sshString(type), sshMpint(e), sshMpint(n)]);
    return {
      type,
      blob: canonical,
      fingerprint: fingerprintOf(canonical),
      bits,
      keyObject: importKey({ kty: 'RSA', n: b64url(n), e: b64url(e) }, 'rsa key'),
    };
  }

  // Recognised-only types: keep the blob as given (we cannot re-encode what we do not parse).
  const base = { type, blob: raw, fingerprint: fingerprintOf(raw), bits: 0 };
  if (type.endsWith(CERT_SUFFIX)) {
    return { ...base, unsupported: { code: 'SSH_CERT_UNSUPPORTED', reason: `certificates of this key type (${type}) are not supported` } };
  }
  if (KNOWN_UNSUPPORTED.has(type)) {
    return { ...base, unsupported: { code: 'SSH_KEY_TYPE_UNSUPPORTED', reason: `key type ${type} is not supported` } };
  }
  return { ...base, unsupported: { code: 'SSH_KEY_TYPE_UNSUPPORTED', reason: `unknown key type ${JSON.stringify(type)}` } };
}

/** Wire fields of each certifiable key type after the nonce (PROTOCOL.certkeys): s = string, m = mpint. */
const CERT_KEY_FIELDS: Record<string, string> = {
  'ssh-ed25519': 's',
  'ssh-rsa': 'mm',
  'ecdsa-sha2-nistp256': 'ss',
  'ecdsa-sha2-nistp384': 'ss',
  'ecdsa-sha2-nistp521': 'ss',
  [SK_ED25519]: 'ss',
  [SK_ECDSA]: 'sss',
};

/** Certificates whose `valid before` is this never expire. */
export const CERT_FOREVER = 0xffffffffffffffffn;

function u64(r: WireReader, what: string): bigint {
  return r.bytes(8, what).readBigUInt64BE(0);
}

/** A string holding a list of strings (principals) or of (name, data) pairs (critical options, extensions). */
function stringList(b: Buffer, what: string): string[] {
  const r = new WireReader(b);
  const out: string[] = [];
  while (r.remaining > 0) out.push(r.text(what));
  return out;
}

function optionList(b: Buffer, what: string): { name: string; data: Buffer }[] {
  const r = new WireReader(b);
  const out: { name: string; data: Buffer }[] = [];
  while (r.remaining > 0) {
    const name = r.text(`${what} name`);
    // OpenSSH refuses repeated or unsorted names (cert_parse): one name, one meaning.
    const prev = out[out.length - 1];
    if (prev !== undefined && prev.name >= name) throw new SshWireError(`${what} are not sorted or repeat ${JSON.stringify(name)}`);
    out.push({ name, data: r.string(`${what} data`) });
  }
  return out;
}

function parseCertificate(raw: Buffer, r: WireReader, type: string, certified: string): SshPublicKey {
  r.string('certificate nonce');
  const fields: Buffer[] = [];
  for (const f of CERT_KEY_FIELDS[certified]!)
    fields.push(sshString(f === 'm' ? r.string('certified key mpint') : r.string('certified key field')));
  const key = parsePublicKeyBlob(Buffer.concat([sshString(certified), ...fields]));
  const serial = u64(r, 'certificate serial');
  const certType = r.u32('certificate type');
  const keyId = r.text('certificate key id');
  const principals = stringList(r.string('certificate principals'), 'principal');
  const validAfter = u64(r, 'certificate valid after');
  const validBefore = u64(r, 'certificate valid before');
  const criticalOptions = optionList(r.string('certificate critical options'), 'critical options');
  const extensions = optionList(r.string('certificate extensions'), 'extensions').map((e) => e.name);
  r.string('certificate reserved');
  const caBlob = r.string('certificate signature key');
  const signedLength = raw.length - r.remaining;
  const signature = r.string('certificate signature');
  r.end('certificate');
  const signatureKey = parsePublicKeyBlob(caBlob);
  // OpenSSH refuses a certificate signed by a certificate (SSH_ERR_KEY_CERT_INVALID_SIGN_KEY): a CA is a plain key.
  if (signatureKey.cert) throw new SshWireError('certificate is signed by a certificate, not a plain CA key');
  if (validBefore < validAfter) throw new SshWireError('certificate valid before precedes valid after');
  const cert: SshCertificate = {
    key,
    serial,
    certType,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    signedPart: raw.subarray(0, signedLength),
    signature,
  };
  return {
    type,
    blob: raw,
    fingerprint: key.fingerprint,
    bits: key.bits,
    cert,
    ...(key.unsupported ? { unsupported: key.unsupported } : {}),
  };
}

/**
 * Key type names accepted at the start of a text key (OpenSSH's peek_type_nid), mapped to the type the blob must
 * carry. The rsa-sha2-* signature names are accepted as aliases of ssh-rsa, as OpenSSH does.
 */
const TEXT_KEY_TYPES: ReadonlyMap<string, string> = new Map([
  ...[
    'ssh-ed25519',
    'ssh-rsa',
    'ssh-dss',
    ...Object.keys(EC_CURVES),
    'sk-ssh-ed25519@openssh.com',
    'sk-ecdsa-sha2-nistp256@openssh.com',
    'ssh-xmss@openssh.com',
  ].flatMap((t): [string, string][] => {
    const cert = t.endsWith('@openssh.com') ? t.replace(/@openssh\.com$/, CERT_SUFFIX) : `${t}${CERT_SUFFIX}`;
    return [
      [t, t],
      [cert, cert],
    ];
  }),
  ['rsa-sha2-256', 'ssh-rsa'],
  ['rsa-sha2-512', 'ssh-rsa'],
  [`rsa-sha2-256${CERT_SUFFIX}`, `ssh-rsa${CERT_SUFFIX}`],
  [`rsa-sha2-512${CERT_SUFFIX}`, `ssh-rsa${CERT_SUFFIX}`],
]);

/** Whether `word` is a key type name that can start a text key. */
export function isKeyTypeName(word: string): boolean {
  return TEXT_KEY_TYPES.has(word);
}

/**
 * Parses "<type> <base64> [comment]" (the form of a .pub file and of the key in allowed_signers). Throws
 * CommitVerifyError SSH_KEY_INVALID with a short description; callers wrap it with their own code and location.
 */
export function parseKeyText(text: string): { key: SshPublicKey; comment: string } {
  const m = /^[ \t]*([^ \t]+)[ \t]+([^ \t]+)(?:[ \t]+(.*))?$/s.exec(text);
  if (!m) throw new CommitVerifyError('SSH_KEY_INVALID', 'expected "<key type> <base64 key> [comment]"');
  const declared = m[1]!;
  const expected = TEXT_KEY_TYPES.get(declared);
  if (expected === undefined) throw new CommitVerifyError('SSH_KEY_INVALID', `unknown key type ${JSON.stringify(declared)}`);
  const blob = decodeBase64Strict(m[2]!);
  if (!blob) throw new CommitVerifyError('SSH_KEY_INVALID', 'key is not valid base64');
  let key: SshPublicKey;
  try {
    key = parsePublicKeyBlob(blob);
  } catch (e) {
    throw new CommitVerifyError('SSH_KEY_INVALID', `invalid ${declared} key: ${(e as Error).message}`, { cause: e });
  }
  if (key.type !== expected)
    throw new CommitVerifyError('SSH_KEY_INVALID', `key declared as ${declared} but the blob is ${JSON.stringify(key.type)}`);
  return { key, comment: (m[3] ?? '').trim() };
}

/** SHA256 fingerprint of a public key line ("ssh-ed25519 AAAA... comment"), as printed by `ssh-keygen -lf`. */
export function sshPublicKeyFingerprint(keyLine: string): string {
  try {
    return parseKeyText(keyLine.trim()).key.fingerprint;
  } catch (e) {
    throw new CommitVerifyError('SSH_KEY_INVALID', `public key: ${(e as Error).message}`);
  }
}
