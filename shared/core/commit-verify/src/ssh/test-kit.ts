/**
 * Test support (not exported from the package): an SSHSIG *signer* on node:crypto, so tests can craft signatures
 * that no well-behaved tool emits (legacy ssh-rsa/SHA-1, version 0, reserved bytes, short RSA signatures, foreign
 * key types) and fuzz without spawning processes. Real-tool interop is tested separately with ssh-keygen and git.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { skSignedData } from './sk.js';
import { sshMpint, sshString, u32 } from './wire.js';

export type TestKeyKind = 'ed25519' | 'p256' | 'p384' | 'p521' | 'rsa1024' | 'rsa2048' | 'rsa3072' | 'sk-ed25519' | 'sk-p256';

export interface TestKey {
  kind: TestKeyKind;
  /** SSH key type name. */
  type: string;
  /** SSH wire blob of the public key. */
  blob: Buffer;
  /** "<type> <base64>", as in a .pub file without comment. */
  line: string;
  privateKey: KeyObject;
  /** Security keys (sk-*) only: the FIDO application bound into the public key. */
  application?: string;
}

const EC: Record<string, { crv: string; ssh: string; hash: string; size: number }> = {
  p256: { crv: 'prime256v1', ssh: 'nistp256', hash: 'sha256', size: 32 },
  p384: { crv: 'secp384r1', ssh: 'nistp384', hash: 'sha384', size: 48 },
  p521: { crv: 'secp521r1', ssh: 'nistp521', hash: 'sha512', size: 66 },
};

/** The SSH wire blob of a node public key. */
export function publicKeyBlob(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const d = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return Buffer.concat([sshString('ssh-ed25519'), sshString(d(jwk.x))]);
  if (jwk.kty === 'EC') {
    const name = jwk.crv === 'P-256' ? 'nistp256' : jwk.crv === 'P-384' ? 'nistp384' : 'nistp521';
    return Buffer.concat([
      sshString(`ecdsa-sha2-${name}`),
      sshString(name),
      sshString(Buffer.concat([Buffer.from([4]), d(jwk.x), d(jwk.y)])),
    ]);
  }
  if (jwk.kty === 'RSA') return Buffer.concat([sshString('ssh-rsa'), sshMpint(d(jwk.e)), sshMpint(d(jwk.n))]);
  throw new Error(`unsupported test key ${String(jwk.kty)}`);
}

/**
 * A software "security key": node:crypto keys with the public blob of an sk-* key (PROTOCOL.u2f), so the tests make
 * the exact signed-data layout a FIDO token makes (cross-checked with `ssh-keygen -Y verify`).
 */
function generateSkKey(kind: 'sk-ed25519' | 'sk-p256', application: string): TestKey {
  const { privateKey, publicKey } =
    kind === 'sk-ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const plain = publicKeyBlob(publicKey);
  const type = kind === 'sk-ed25519' ? 'sk-ssh-ed25519@openssh.com' : 'sk-ecdsa-sha2-nistp256@openssh.com';
  // The plain blob minus its type string, then the application: sk keys are the plain key plus string(application).
  const fields = plain.subarray(4 + plain.readUInt32BE(0));
  const blob = Buffer.concat([sshString(type), fields, sshString(application)]);
  return { kind, type, blob, line: `${type} ${blob.toString('base64')}`, privateKey, application };
}

export function generateTestKey(kind: TestKeyKind, application = 'ssh:'): TestKey {
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  if (kind === 'sk-ed25519' || kind === 'sk-p256') return generateSkKey(kind, application);
  if (kind === 'ed25519') ({ privateKey, publicKey } = generateKeyPairSync('ed25519'));
  else if (kind.startsWith('rsa')) ({ privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: Number(kind.slice(3)) }));
  else ({ privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: EC[kind]!.crv }));
  const blob = publicKeyBlob(publicKey);
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1');
  return { kind, type, blob, line: `${type} ${blob.toString('base64')}`, privateKey };
}

export interface SshSigOptions {
  namespace?: string;
  /** 'sha512' or 'sha256'; any other name builds a signature the verifier must refuse. */
  hashAlgorithm?: string;
  /** RSA only: which signature algorithm to use; 'ssh-rsa' is the legacy SHA-1 one. */
  rsaAlgorithm?: 'rsa-sha2-512' | 'rsa-sha2-256' | 'ssh-rsa';
  version?: number;
  reserved?: Buffer;
  /** Put a different public key blob into the signature than the one that signed. */
  publicKeyBlob?: Buffer;
  /** Sign this namespace while writing `namespace` into the blob. */
  signedNamespace?: string;
  /** Drop leading zero bytes of an RSA signature, as some signers do. */
  stripRsaLeadingZeros?: boolean;
  trailing?: Buffer;
  /** Replace the inner signature blob (string sigtype || sigdata) with something derived from the real one. */
  mapSignature?: (real: Buffer) => Buffer;
  /** Security keys: authenticator flags (default 0x01, user present) and counter (default 1). */
  skFlags?: number;
  skCounter?: number;
  /** Security keys: the application the token hashes (default: the key's own). */
  skSignedApplication?: string;
}

/** The inner signature blob (string sigtype || sigdata [|| flags || counter]) of `key` over `toSign`. */
export function signatureBlob(key: TestKey, toSign: Buffer, opts: SshSigOptions = {}): Buffer {
  if (key.kind === 'sk-ed25519' || key.kind === 'sk-p256') {
    const details = { flags: opts.skFlags ?? 0x01, counter: opts.skCounter ?? 1 };
    const tokenSigned = skSignedData(opts.skSignedApplication ?? key.application!, details, toSign);
    let inner: Buffer;
    if (key.kind === 'sk-ed25519') inner = sign(null, tokenSigned, key.privateKey);
    else {
      const rs = sign('sha256', tokenSigned, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      inner = Buffer.concat([sshMpint(rs.subarray(0, 32)), sshMpint(rs.subarray(32))]);
    }
    return Buffer.concat([sshString(key.type), sshString(inner), Buffer.from([details.flags]), u32(details.counter)]);
  }
  if (key.kind === 'ed25519') return Buffer.concat([sshString('ssh-ed25519'), sshString(sign(null, toSign, key.privateKey))]);
  if (key.kind.startsWith('rsa')) {
    const alg = opts.rsaAlgorithm ?? 'rsa-sha2-512';
    const hash = alg === 'ssh-rsa' ? 'sha1' : alg === 'rsa-sha2-256' ? 'sha256' : 'sha512';
    let sig = sign(hash, toSign, key.privateKey);
    if (opts.stripRsaLeadingZeros) {
      let i = 0;
      while (i < sig.length && sig[i] === 0) i++;
      sig = sig.subarray(i);
    }
    return Buffer.concat([sshString(alg), sshString(sig)]);
  }
  const ec = EC[key.kind]!;
  const rs = sign(ec.hash, toSign, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  const inner = Buffer.concat([sshMpint(rs.subarray(0, ec.size)), sshMpint(rs.subarray(ec.size))]);
  return Buffer.concat([sshString(key.type), sshString(inner)]);
}

/** Builds a binary SSHSIG blob (PROTOCOL.sshsig) over `message`. */
export function sshsigSign(key: TestKey, message: Uint8Array, opts: SshSigOptions = {}): Buffer {
  const namespace = opts.namespace ?? 'git';
  const hashAlgorithm = opts.hashAlgorithm ?? 'sha512';
  const digestAlg = hashAlgorithm === 'sha256' || hashAlgorithm === 'sha512' ? hashAlgorithm : 'sha512';
  const toSign = Buffer.concat([
    Buffer.from('SSHSIG'),
    sshString(opts.signedNamespace ?? namespace),
    sshString(''),
    sshString(hashAlgorithm),
    sshString(createHash(digestAlg).update(message).digest()),
  ]);
  const sigBlob = signatureBlob(key, toSign, opts);
  return Buffer.concat([
    Buffer.from('SSHSIG'),
    u32(opts.version ?? 1),
    sshString(opts.publicKeyBlob ?? key.blob),
    sshString(namespace),
    sshString(opts.reserved ?? Buffer.alloc(0)),
    sshString(hashAlgorithm),
    sshString(opts.mapSignature ? opts.mapSignature(sigBlob) : sigBlob),
    opts.trailing ?? Buffer.alloc(0),
  ]);
}

/** Armors a blob the way ssh-keygen does (70 base64 characters per line). */
export function armor(blob: Uint8Array): string {
  const b64 = Buffer.from(blob).toString('base64');
  const lines = b64.match(/.{1,70}/g) ?? [];
  return ['-----BEGIN SSH SIGNATURE-----', ...lines, '-----END SSH SIGNATURE-----'].join('\n');
}

/** Inserts a gpgsig header at the end of the commit headers, where git puts it (add_header_signature). */
export function commitWithSignature(payload: Uint8Array, armored: string): Buffer {
  const buf = Buffer.from(payload);
  const eoh = buf.indexOf('\n\n');
  if (eoh < 0) throw new Error('payload has no header/message separator');
  const header = `gpgsig ${armored.replace(/\n$/, '').split('\n').join('\n ')}\n`;
  return Buffer.concat([buf.subarray(0, eoh + 1), Buffer.from(header, 'latin1'), buf.subarray(eoh + 1)]);
}
