/**
 * Signed checkpoints of the per-Application audit chains, in the C2SP formats:
 * - tlog-checkpoint: `<origin>\n<tree size>\n<base64 root hash>\n` — here the "tree" is one Application's hash chain,
 *   its size the number of records and its root the newest record's hash (a chain head, not a Merkle root: no
 *   inclusion or consistency proofs, but any tool that speaks signed notes can check the signature);
 * - signed-note: the text, an empty line, then `— <key name> <base64(4-byte key hash || Ed25519 signature)>` lines.
 *
 * Why: the chain and its head live in the same Redis, so whoever can write Redis can rewrite every record and
 * recompute every hash. A signature by a key that only the gate holds (a Kubernetes Secret, never in Redis) is what
 * such a writer cannot recompute.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

export class CheckpointError extends BaseError<'CHECKPOINT_KEY_INVALID' | 'CHECKPOINT_MALFORMED' | 'CHECKPOINT_UNVERIFIED'> {}

/** Key name used for keys given as PEM (a PEM key carries no name; the note formats do). */
export const DEFAULT_CHECKPOINT_KEY_NAME = 'gitops-gate-audit';

const ED25519 = 0x01;
// DER prefixes of an Ed25519 key's PKCS#8 / SPKI encoding: the raw 32 bytes follow.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface CheckpointVerifier {
  name: string;
  /** 4 bytes: SHA-256(name || 0x0A || 0x01 || public key)[0:4], as signed-note defines for Ed25519. */
  keyHash: Buffer;
  publicKey: KeyObject;
  /** The note verifier key, `<name>+<hex key hash>+<base64(0x01 || public key)>`: what operators publish. */
  text: string;
}

export interface CheckpointSigner {
  verifier: CheckpointVerifier;
  /** Signs a checkpoint body and returns the signed note. */
  sign(body: string): string;
}

export interface Checkpoint {
  origin: string;
  size: number;
  /** The chain head, hex (as the audit records carry it). */
  rootHash: string;
}

function checkName(name: string, what: string): string {
  // signed-note: a key name is non-empty and has no Unicode spaces and no plus signs.
  if (name === '' || /[\s+]/u.test(name))
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: invalid key name ${JSON.stringify(name)}`);
  return name;
}

function keyHashOf(name: string, rawPublic: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.from([ED25519]), rawPublic]))
    .digest()
    .subarray(0, 4);
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

function makeVerifier(name: string, publicKey: KeyObject): CheckpointVerifier {
  const raw = rawPublicKey(publicKey);
  const keyHash = keyHashOf(name, raw);
  return {
    name,
    keyHash,
    publicKey,
    text: `${name}+${keyHash.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), raw]).toString('base64')}`,
  };
}

/** `<name>+<8 hex digits of key hash>+<base64(0x01 || 32 bytes)>` (the base64 may itself contain `+`). */
function parseNoteKey(text: string, what: string): { name: string; raw: Buffer; keyHash: string } {
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(text);
  const [, name, hash, b64] = m ?? [];
  if (name === undefined || hash === undefined || b64 === undefined || !/^[0-9a-f]{8}$/.test(hash)) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: expected <name>+<8 hex digits>+<base64 key>`);
  }
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length !== 33 || bytes[0] !== ED25519 || bytes.toString('base64') !== b64) {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: not an Ed25519 note key (want base64 of 0x01 and 32 bytes)`);
  }
  return { name: checkName(name, what), raw: bytes.subarray(1), keyHash: hash };
}

/**
 * The gate's signing key: an Ed25519 private key as PKCS#8 PEM (`openssl genpkey -algorithm ed25519`; key name
 * `gitops-gate-audit`) or in the note format `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>` (Go's
 * golang.org/x/mod/sumdb/note, e.g. `note.GenerateKey`). `what` names the source in errors.
 */
export function parseSigningKey(text: string, what: string): CheckpointSigner {
  const trimmed = text.trim();
  let name = DEFAULT_CHECKPOINT_KEY_NAME;
  let privateKey: KeyObject;
  if (trimmed.startsWith('PRIVATE+KEY+')) {
    const note = parseNoteKey(trimmed.slice('PRIVATE+KEY+'.length), what);
    name = note.name;
    privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, note.raw]), format: 'der', type: 'pkcs8' });
    const verifier = makeVerifier(name, createPublicKey(privateKey));
    if (verifier.keyHash.toString('hex') !== note.keyHash)
      throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: key hash does not match the key`);
  } else if (trimmed.includes('-----BEGIN PRIVATE KEY-----')) {
    try {
      privateKey = createPrivateKey({ key: trimmed, format: 'pem' });
    } catch (err) {
      throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: not a readable PEM private key (${(err as Error).message})`);
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: the key is ${privateKey.asymmetricKeyType}, not Ed25519`);
    }
  } else {
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: expected an Ed25519 PKCS#8 PEM key or a PRIVATE+KEY+… note key`);
  }
  const verifier = makeVerifier(name, createPublicKey(privateKey));
  const sigPrefix = verifier.keyHash;
  return {
    verifier,
    sign(body) {
      if (!body.endsWith('\n')) throw new CheckpointError('CHECKPOINT_MALFORMED', 'a note text must end with a newline');
      const sig = sign(null, Buffer.from(body), privateKey);
      return `${body}\n\u2014 ${name} ${Buffer.concat([sigPrefix, sig]).toString('base64')}\n`;
    },
  };
}

/** Reads the signing key file; errors name `variable` (the gate stops rather than run unsigned by mistake). */
export function readSigningKeyFile(path: string, variable: string): CheckpointSigner {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CheckpointError(
      'CHECKPOINT_KEY_INVALID',
      `${variable}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseSigningKey(text, `${variable} ${path}`);
}

/**
 * A verification key: the note verifier key `<name>+<hash>+<base64>` (what `/ui` and the gate's start-up log show)
 * or an Ed25519 public key as SPKI PEM (`openssl pkey -pubout`; key name `gitops-gate-audit`).
 */
export function parseVerifierKey(text: string, what: string): CheckpointVerifier {
  const trimmed = text.trim();
  if (trimmed.includes('-----BEGIN PUBLIC KEY-----')) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: trimmed, format: 'pem' });
    } catch (err) {
      throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: not a readable PEM public key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: the key is ${key.asymmetricKeyType}, not Ed25519`);
    return makeVerifier(DEFAULT_CHECKPOINT_KEY_NAME, key);
  }
  const note = parseNoteKey(trimmed, what);
  const verifier = makeVerifier(note.name, createPublicKey({ key: Buffer.concat([SPKI_PREFIX, note.raw]), format: 'der', type: 'spki' }));
  if (verifier.keyHash.toString('hex') !== note.keyHash)
    throw new CheckpointError('CHECKPOINT_KEY_INVALID', `${what}: key hash does not match the key`);
  return verifier;
}

/** The checkpoint body (the note text that is signed). */
export function formatCheckpoint(cp: Checkpoint): string {
  if (cp.origin === '' || /[\n]/.test(cp.origin)) throw new CheckpointError('CHECKPOINT_MALFORMED', 'origin must be one non-empty line');
  if (!/^[0-9a-f]{64}$/.test(cp.rootHash)) throw new CheckpointError('CHECKPOINT_MALFORMED', 'root hash must be 64 hex digits');
  return `${cp.origin}\n${cp.size}\n${Buffer.from(cp.rootHash, 'hex').toString('base64')}\n`;
}

/** The origin line of one Application's chain: `gitops-gate/<cluster>/<namespace>/<name>`. */
export function checkpointOrigin(cluster: string, app: string): string {
  return `gitops-gate/${cluster}/${app}`;
}

/**
 * Opens a signed checkpoint: at least one signature line must be by one of `verifiers` and valid (lines by other keys
 * are ignored, as signed-note prescribes, so a witness may co-sign). Returns the parsed checkpoint and which keys
 * signed; throws CheckpointError naming what is wrong otherwise.
 */
export function openCheckpoint(note: string, verifiers: CheckpointVerifier[]): Checkpoint & { signedBy: string[] } {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new CheckpointError('CHECKPOINT_MALFORMED', 'not a signed note (no empty line before the signatures)');
  const body = note.slice(0, split + 1);
  const sigLines = note.slice(split + 2).split('\n');
  if (sigLines.pop() !== '' || sigLines.length === 0)
    throw new CheckpointError('CHECKPOINT_MALFORMED', 'signature lines must end with a newline');
  const signedBy: string[] = [];
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (!m) throw new CheckpointError('CHECKPOINT_MALFORMED', `malformed signature line ${JSON.stringify(line.slice(0, 80))}`);
    const sig = Buffer.from(m[2]!, 'base64');
    if (sig.length < 5) throw new CheckpointError('CHECKPOINT_MALFORMED', 'signature too short');
    for (const v of verifiers) {
      if (v.name !== m[1] || !v.keyHash.equals(sig.subarray(0, 4))) continue;
      if (!verify(null, Buffer.from(body), v.publicKey, sig.subarray(4))) {
        throw new CheckpointError('CHECKPOINT_UNVERIFIED', `signature by ${v.name} does not verify (the checkpoint was altered)`);
      }
      signedBy.push(v.text);
    }
  }
  if (signedBy.length === 0) {
    const names = sigLines.map((l) => l.split(' ')[1]).join(', ');
    throw new CheckpointError('CHECKPOINT_UNVERIFIED', `signed by none of the trusted keys (signatures by: ${names})`);
  }
  const [origin, size, root, ...rest] = body.split('\n');
  const rootHash = Buffer.from(root ?? '', 'base64');
  if (
    !origin ||
    !size ||
    !/^(0|[1-9][0-9]{0,15})$/.test(size) ||
    rootHash.length !== 32 ||
    rootHash.toString('base64') !== root ||
    rest.at(-1) !== ''
  ) {
    throw new CheckpointError('CHECKPOINT_MALFORMED', 'signed text is not a checkpoint (origin, tree size, base64 root hash)');
  }
  return { origin, size: Number(size), rootHash: rootHash.toString('hex'), signedBy };
}
