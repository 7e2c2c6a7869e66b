/**
 * SSHSIG commit-signature verification (OpenSSH PROTOCOL.sshsig) on node:crypto, with `git verify-commit` semantics:
 * git runs `ssh-keygen -Y verify -n git -f allowed_signers -I <principal> -Overify-time=<commit time>`.
 *
 * One deliberate difference: git asks `ssh-keygen -Y find-principals` which principals the key is listed for and
 * accepts if *any* of them verifies, so a key listed for bob@ "verifies" a commit whose committer is alice@. Here the
 * caller names the principal (the committer email), and a key listed only for someone else is SSH_SIGNER_NOT_ALLOWED.
 *
 * Other places where this is stricter than ssh-keygen (each is a rejection, never an acceptance): SSHSIG version must
 * be exactly 1, the reserved field must be empty, base64 must be canonical, RSA keys (signing and CA) need 2048 bits
 * (SSH_KEY_TOO_WEAK), DSA and webauthn-sk signatures are refused, certificates with critical options other than
 * verify-required are refused, and a policy may require the security-key flags user presence / user verification.
 *
 * Accepted: ssh-ed25519, ecdsa-sha2-nistp{256,384,521}, ssh-rsa (rsa-sha2-256/512), sk-ssh-ed25519 and
 * sk-ecdsa-sha2-nistp256 (sk.ts), and user certificates of all of them (certificate.ts) through cert-authority lines.
 */
import { createHash } from 'node:crypto';
import type { MethodResult } from '../types.js';
import type { AllowedSigner } from './allowed-signers.js';
import { checkCertificateAuthority, verifyCertificateSignature } from './certificate.js';
import { parsePublicKeyBlob } from './keys.js';
import type { SshPublicKey } from './keys.js';
import { matchPatternList } from './patterns.js';
import { SshReject, reject } from './reject.js';
import { revocationOf } from './revocation.js';
import type { SshRevocationList } from './revocation.js';
import { checkSignature, refuseUnusableKey } from './signature.js';
import { SK_FLAG_USER_PRESENT, SK_FLAG_USER_VERIFIED, describeSkFlags } from './sk.js';
import { SshWireError, WireReader, decodeBase64Strict, sshString } from './wire.js';

export { SSH_REJECT_CODES } from './reject.js';
export type { SshRejectCode } from './reject.js';

export interface SshVerifyInput {
  /** Exactly the signed bytes (for a commit: the raw object without its gpgsig header, see parseCommit). */
  payload: Uint8Array;
  /** The armored signature, "-----BEGIN SSH SIGNATURE-----" ... "-----END SSH SIGNATURE-----". */
  signature: string;
  allowedSigners: readonly AllowedSigner[];
  /** Who must have signed: the allowed_signers principal to check (git: the committer email). */
  principal: string;
  /** The instant key and certificate validity windows are checked at (git: the committer timestamp). */
  at: Date;
  /** Signature namespace; git signs commits and tags with 'git'. */
  namespace?: string;
  /** Revoked keys, CAs, certificate serials and key ids (git: gpg.ssh.revocationFile): they verify nothing. */
  revoked?: readonly SshRevocationList[];
  /** Security keys: require the user-presence (touch) flag in the signature. Stricter than git, which ignores flags. */
  requireUserPresence?: boolean;
  /** Security keys: require the user-verification (PIN/biometric) flag. Only security keys can meet it. */
  requireUserVerification?: boolean;
}

const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
const MAGIC = Buffer.from('SSHSIG', 'latin1');
/** Real signatures are a few KiB (a 16384-bit RSA one ~4.2 KiB); refuse absurd input before doing any work. */
const MAX_SIGNATURE_TEXT = 256 * 1024;

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
  if (blob.length < MAGIC.length || !blob.subarray(0, MAGIC.length).equals(MAGIC))
    reject('SSH_SIGNATURE_MALFORMED', 'signature blob does not start with the SSHSIG magic');
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

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.byteLength === b.byteLength &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
  );
}

function where(s: AllowedSigner): string {
  return `${s.source}:${s.line}`;
}

/** Checks a line's namespaces and validity window (OpenSSH checks them before the key). Returns evidence or a miss. */
function lineOptions(s: AllowedSigner, namespace: string, atSeconds: number): { evidence: string[] } | SshReject {
  const evidence: string[] = [];
  if (s.namespaces !== undefined) {
    if (matchPatternList(namespace, s.namespaces) !== 1) {
      return new SshReject(
        'SSH_SIGNER_NAMESPACE_NOT_ALLOWED',
        `${where(s)}: key is not permitted for namespace ${JSON.stringify(namespace)} (namespaces="${s.namespaces.join(',')}")`,
      );
    }
    evidence.push(`namespace "${namespace}" permitted by namespaces="${s.namespaces.join(',')}"`);
  }
  const at = new Date(atSeconds * 1000).toISOString();
  if (s.validAfter !== undefined && atSeconds < Math.floor(s.validAfter.getTime() / 1000)) {
    return new SshReject('SSH_KEY_NOT_YET_VALID', `${where(s)}: key is not yet valid at ${at} (valid-after ${s.validAfter.toISOString()})`);
  }
  if (s.validBefore !== undefined && atSeconds > Math.floor(s.validBefore.getTime() / 1000)) {
    return new SshReject('SSH_KEY_EXPIRED', `${where(s)}: key has expired at ${at} (valid-before ${s.validBefore.toISOString()})`);
  }
  if (s.validAfter !== undefined || s.validBefore !== undefined) {
    evidence.push(
      `key valid at ${at} (${s.validAfter ? `valid-after ${s.validAfter.toISOString()}` : ''}${s.validAfter && s.validBefore ? ', ' : ''}${s.validBefore ? `valid-before ${s.validBefore.toISOString()}` : ''})`,
    );
  }
  return { evidence };
}

interface SignerMatch {
  signer: AllowedSigner;
  evidence: string[];
  /** A certificate's verify-required critical option. */
  requireUserVerification: boolean;
}

/**
 * OpenSSH's sshsig_check_allowed_keys: the first line whose principals match, whose key is this plain key (or, for a
 * certificate, which is a cert-authority line for its CA that authorises the certificate) and whose options permit
 * the namespace and time wins. When none does, the first near miss explains why.
 */
function findSigner(
  signers: readonly AllowedSigner[],
  key: SshPublicKey,
  principal: string,
  namespace: string,
  atSeconds: number,
): SignerMatch {
  const forPrincipal = signers.filter((s) => matchPatternList(principal, s.principals) === 1);
  const cert = key.cert;
  // A certificate is trusted only through its CA; a plain key only through a line listing exactly it.
  const wanted = cert ? cert.signatureKey.blob : key.blob;
  const same = (s: AllowedSigner): boolean => s.certAuthority === (cert !== undefined) && bytesEqual(s.publicKey, wanted);
  const lines = forPrincipal.filter(same);
  if (lines.length === 0) {
    const what = cert ? `certificate CA ${cert.signatureKey.fingerprint}` : `key ${key.fingerprint}`;
    const elsewhere = signers.filter(same).map(where);
    const otherRole = forPrincipal.filter((s) => s.certAuthority !== (cert !== undefined) && bytesEqual(s.publicKey, wanted)).map(where);
    let reason =
      forPrincipal.length === 0
        ? `principal ${JSON.stringify(principal)} is not listed in allowed signers`
        : `${what} is not listed${cert ? ' as a cert-authority' : ''} for principal ${JSON.stringify(principal)}`;
    if (otherRole.length > 0)
      reason += cert ? ` (only as a plain key at ${otherRole.join(', ')})` : ` (only as a cert-authority at ${otherRole.join(', ')})`;
    else if (elsewhere.length > 0) reason += ` (listed for other principals at ${elsewhere.join(', ')})`;
    reject('SSH_SIGNER_NOT_ALLOWED', reason);
  }
  let miss: SshReject | undefined;
  for (const s of lines) {
    const opts = lineOptions(s, namespace, atSeconds);
    if (opts instanceof SshReject) {
      miss ??= opts;
      continue;
    }
    if (!cert) return { signer: s, evidence: opts.evidence, requireUserVerification: false };
    try {
      const authority = checkCertificateAuthority(cert, principal, atSeconds);
      return { signer: s, evidence: [...opts.evidence, ...authority.evidence], requireUserVerification: authority.requireUserVerification };
    } catch (e) {
      if (!(e instanceof SshReject)) throw e;
      miss ??= new SshReject(e.code, `${where(s)}: ${e.reason}`);
    }
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
  if (input.signature.length > MAX_SIGNATURE_TEXT)
    reject('SSH_SIGNATURE_MALFORMED', `signature text is larger than ${MAX_SIGNATURE_TEXT} characters`);

  const sig = parseSshSig(dearmor(input.signature));
  if (!sig.namespace.equals(Buffer.from(namespace, 'utf8'))) {
    reject(
      'SSH_NAMESPACE_MISMATCH',
      `signature namespace ${JSON.stringify(sig.namespace.toString('latin1'))} is not ${JSON.stringify(namespace)}`,
    );
  }
  if (sig.hashAlgorithm !== 'sha512' && sig.hashAlgorithm !== 'sha256') {
    reject(
      'SSH_HASH_ALGORITHM_UNSUPPORTED',
      `SSHSIG hash algorithm ${JSON.stringify(sig.hashAlgorithm)} is not supported (sha512, sha256)`,
    );
  }
  const key = parsePublicKeyBlob(sig.publicKey);
  const signing = key.cert?.key ?? key;
  refuseUnusableKey(key);
  refuseUnusableKey(signing);
  const evidence: string[] = [];
  if (key.cert)
    evidence.push(`certificate signature by CA ${key.cert.signatureKey.fingerprint} verifies (${verifyCertificateSignature(key.cert)})`);

  // PROTOCOL.sshsig: the key signs MAGIC || string(namespace) || string(reserved) || string(hashalg) || string(H(m)).
  const digest = createHash(sig.hashAlgorithm).update(input.payload).digest();
  const signedData = Buffer.concat([
    MAGIC,
    sshString(Buffer.from(namespace, 'utf8')),
    sshString(''),
    sshString(sig.hashAlgorithm),
    sshString(digest),
  ]);
  const checked = checkSignature(signing, sig.signature, signedData);

  // After the signature verifies, before any trust decision: a revoked key verifies nothing, whatever the date.
  for (const list of input.revoked ?? []) {
    const revoked = revocationOf(list, key);
    if (revoked !== undefined) reject('SSH_KEY_REVOKED', revoked);
  }

  const atSeconds = Math.floor(input.at.getTime() / 1000);
  const match = findSigner(input.allowedSigners, key, input.principal, namespace, atSeconds);

  if (checked.sk) {
    const { flags, counter } = checked.sk;
    if (input.requireUserPresence && !(flags & SK_FLAG_USER_PRESENT))
      reject(
        'SSH_SK_USER_PRESENCE_REQUIRED',
        `security-key signature was made without user presence (${describeSkFlags(flags)}); the policy requires a touch`,
      );
    const uvBy = input.requireUserVerification
      ? 'the policy'
      : match.requireUserVerification
        ? 'the certificate (verify-required)'
        : undefined;
    if (uvBy && !(flags & SK_FLAG_USER_VERIFIED))
      reject(
        'SSH_SK_USER_VERIFICATION_REQUIRED',
        `security-key signature was made without user verification (${describeSkFlags(flags)}); ${uvBy} requires it`,
      );
    evidence.push(`security key application ${JSON.stringify(signing.application)}, ${describeSkFlags(flags)}, counter ${counter}`);
  } else if (input.requireUserVerification || match.requireUserVerification) {
    reject(
      'SSH_SK_USER_VERIFICATION_REQUIRED',
      `${input.requireUserVerification ? 'the policy' : 'the certificate (verify-required)'} requires user verification, which only a security-key (sk-*) signature can show; ${signing.type} cannot`,
    );
  }
  return {
    ok: true,
    method: 'ssh',
    signer: { identity: input.principal, keyFingerprint: signing.fingerprint },
    evidence: [
      `SSHSIG v1 signature, namespace "${namespace}", ${sig.hashAlgorithm} digest of ${input.payload.byteLength} payload bytes`,
      `${checked.algorithm} signature verifies with ${signing.type} key ${signing.fingerprint}${signing.type === 'ssh-rsa' ? ` (${signing.bits} bits)` : ''}`,
      ...evidence,
      `${where(match.signer)} lists the ${key.cert ? 'certificate authority' : 'key'} for principal ${JSON.stringify(input.principal)} (patterns "${match.signer.principals.join(',')}")`,
      ...match.evidence,
      ...(input.revoked ?? []).map((l) => `not revoked by ${l.source} (${l.format === 'krl' ? 'KRL' : 'key list'})`),
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
    if (e instanceof SshReject) return { ok: false, method: 'ssh', code: e.code, reason: e.reason };
    if (e instanceof SshWireError)
      return { ok: false, method: 'ssh', code: 'SSH_SIGNATURE_MALFORMED', reason: `malformed signature: ${e.message}` };
    // Unreachable for well-typed input; a verifier must still answer, and "no" is the only safe answer.
    return {
      ok: false,
      method: 'ssh',
      code: 'SSH_VERIFY_ERROR',
      reason: `verification failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}
