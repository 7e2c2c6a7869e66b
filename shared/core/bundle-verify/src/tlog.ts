// Transparency-log entries: inclusion (signed entry timestamp and/or Merkle proof against a signed checkpoint) and
// the binding of the logged body to this bundle's signature, digest and signing key.
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Content, InclusionProof, TlogEntry } from './bundle.js';
import { decodeBase64, isObject } from './encoding.js';
import { reject } from './errors.js';
import { defaultHash, digest, verifySignature } from './keys.js';
import type { HashName } from './keys.js';
import type { BundleTrust, TlogInstance } from './trust.js';
import { preAuthEncoding } from './dsse.js';

// ---------------------------------------------------------------------------------------------------------------
// Signed note / checkpoint (https://github.com/C2SP/C2SP/blob/main/signed-note.md, tlog-checkpoint.md)

export interface Checkpoint {
  origin: string;
  size: bigint;
  rootHash: Buffer;
}

interface NoteSignature {
  name: string;
  hint: Buffer;
  signature: Buffer;
}

const SIG_LINE = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/;

function cpFail(reason: string): never {
  return reject('CHECKPOINT_INVALID', reason);
}

export function parseSignedNote(envelope: string): { text: string; checkpoint: Checkpoint; signatures: NoteSignature[] } {
  const sep = envelope.indexOf('\n\n');
  if (sep < 0) cpFail('checkpoint has no signature block');
  const text = envelope.slice(0, sep + 1);
  const sigBlock = envelope.slice(sep + 2);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) cpFail('checkpoint body needs origin, size and root hash');
  const [origin, sizeLine, hashLine] = lines as [string, string, string];
  if (origin.trim() === '' || origin !== origin.trim()) cpFail('checkpoint origin is empty');
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeLine)) cpFail('checkpoint size is not a decimal number');
  let rootHash: Buffer;
  try {
    rootHash = decodeBase64(hashLine, 'checkpoint root hash');
  } catch {
    return cpFail('checkpoint root hash is not base64');
  }
  if (rootHash.length !== 32) cpFail('checkpoint root hash is not 32 bytes');
  if (!sigBlock.endsWith('\n')) cpFail('checkpoint signature block must end with a newline');
  const signatures: NoteSignature[] = [];
  for (const line of sigBlock.slice(0, -1).split('\n')) {
    const m = SIG_LINE.exec(line);
    if (m === null) cpFail('malformed checkpoint signature line');
    let bytes: Buffer;
    try {
      bytes = decodeBase64(m[2], 'checkpoint signature');
    } catch {
      return cpFail('checkpoint signature is not base64');
    }
    if (bytes.length < 5) cpFail('checkpoint signature is too short');
    signatures.push({ name: m[1]!, hint: bytes.subarray(0, 4), signature: bytes.subarray(4) });
  }
  if (signatures.length === 0) cpFail('checkpoint has no signatures');
  return { text, checkpoint: { origin, size: BigInt(sizeLine), rootHash }, signatures };
}

function originMatches(origin: string, host: string): boolean {
  // Rekor v2 (C2SP) uses the host as origin; Rekor v1 appends " - <tree id>".
  return origin === host || origin.startsWith(`${host} - `);
}

/** Verifies the note against one trusted log: a signature line by that log's key, name and origin must exist. */
export function verifyCheckpoint(envelope: string, tlog: TlogInstance): Checkpoint {
  const note = parseSignedNote(envelope);
  if (!originMatches(note.checkpoint.origin, tlog.host)) cpFail('checkpoint origin does not name the transparency log');
  const hint = tlog.checkpointKeyId.subarray(0, 4);
  const data = Buffer.from(note.text, 'utf8');
  const hash = defaultHash(tlog.key);
  // Lines from unknown keys (witness cosignatures, other logs) are ignored; one valid log signature is required.
  const ok = note.signatures.some((s) => s.name === tlog.host && s.hint.equals(hint) && verifySignature(tlog.key, hash, data, s.signature));
  if (!ok) cpFail('no valid checkpoint signature from the transparency log');
  return note.checkpoint;
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 6962 / RFC 9162 Merkle inclusion

function leafHash(body: Uint8Array): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(body)
    .digest();
}

function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}

/** RFC 9162 2.1.3.2. */
export function merkleRoot(index: bigint, size: bigint, leaf: Buffer, proof: Buffer[]): Buffer | undefined {
  if (index >= size) return undefined;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) return undefined;
    if (sn === 0n) return undefined;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) return undefined;
  return r;
}

function verifyInclusionProof(entry: TlogEntry, proof: InclusionProof, tlog: TlogInstance): void {
  const cp = verifyCheckpoint(proof.checkpoint, tlog);
  // The proof's own root/size must be the ones the log signed, not merely consistent with themselves.
  if (proof.treeSize !== cp.size || !proof.rootHash.equals(cp.rootHash)) {
    reject('INCLUSION_PROOF_INVALID', 'inclusion proof does not match the signed checkpoint');
  }
  const root = merkleRoot(proof.logIndex, proof.treeSize, leafHash(entry.body), proof.hashes);
  if (root === undefined || !root.equals(cp.rootHash)) {
    reject('INCLUSION_PROOF_INVALID', 'inclusion proof does not lead to the checkpoint root hash');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Signed entry timestamp (Rekor v1 inclusion promise)

function verifySet(entry: TlogEntry, tlog: TlogInstance): void {
  // Rekor signs the canonical JSON {body, integratedTime, logID, logIndex} (keys sorted, no whitespace).
  const payload =
    `{"body":"${entry.body.toString('base64')}","integratedTime":${entry.integratedTime.toString()},` +
    `"logID":"${entry.logId.toString('hex')}","logIndex":${entry.logIndex.toString()}}`;
  const ok = verifySignature(tlog.key, defaultHash(tlog.key), Buffer.from(payload, 'utf8'), entry.signedEntryTimestamp!);
  if (!ok) reject('SET_INVALID', 'signed entry timestamp does not verify');
}

export interface IncludedEntry {
  entry: TlogEntry;
  tlog: TlogInstance;
  /** Integrated time authenticated by the SET, in ms; undefined for entries proven only by a Merkle proof. */
  integratedTimeMs?: number;
  /** The log index that a signature covers (SET) or that the Merkle proof used. */
  logIndex: bigint;
}

/**
 * Inclusion of one entry. Time-dependent key validity for proof-only entries is checked by the caller once all
 * verified times are known.
 */
export function verifyInclusion(entry: TlogEntry, trust: BundleTrust, nowMs: number): IncludedEntry {
  const logs = trust.tlogs.filter((t) => t.logId.equals(entry.logId) || t.checkpointKeyId.equals(entry.logId));
  if (logs.length === 0) reject('TLOG_UNTRUSTED', 'tlog entry is from a transparency log the trusted root does not list');
  if (entry.signedEntryTimestamp === undefined && entry.inclusionProof === undefined) {
    reject('TLOG_INCLUSION_MISSING', 'tlog entry has neither an inclusion promise nor an inclusion proof');
  }
  let lastError: unknown;
  for (const tlog of logs) {
    try {
      const out: IncludedEntry = { entry, tlog, logIndex: entry.logIndex };
      if (entry.signedEntryTimestamp !== undefined) {
        if (entry.integratedTime === 0n) reject('SET_INVALID', 'inclusion promise without an integrated time');
        const ms = Number(entry.integratedTime) * 1000;
        if (ms < tlog.start || ms > tlog.end) reject('TLOG_KEY_EXPIRED', 'transparency log key is not valid at the integrated time');
        // Allow a little clock skew; an integrated time far in the future is not a time we can rely on.
        if (ms > nowMs + 5 * 60_000) reject('INTEGRATED_TIME_IN_FUTURE', 'integrated time is in the future');
        verifySet(entry, tlog);
        out.integratedTimeMs = ms;
      }
      if (entry.inclusionProof !== undefined) {
        verifyInclusionProof(entry, entry.inclusionProof, tlog);
        if (entry.signedEntryTimestamp === undefined) {
          // Without a SET nothing signs the top-level index; it must be the one the proof was checked for.
          if (entry.logIndex !== entry.inclusionProof.logIndex) {
            reject('INCLUSION_PROOF_INVALID', 'log index differs from the inclusion proof log index');
          }
          out.logIndex = entry.inclusionProof.logIndex;
        }
      }
      return out;
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

// ---------------------------------------------------------------------------------------------------------------
// Body binding

/** What the logged body says the signature verifies with. */
export type LoggedVerifier = { kind: 'certificate'; der: Buffer } | { kind: 'publicKey'; spki: Buffer };

function bodyFail(reason: string): never {
  return reject('TLOG_BODY_MISMATCH', reason);
}

function field(o: unknown, ...path: string[]): unknown {
  let cur: unknown = o;
  for (const p of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function pemVerifier(b64pem: unknown): LoggedVerifier {
  let text: string;
  try {
    text = decodeBase64(b64pem, 'logged verifier').toString('utf8');
  } catch {
    return bodyFail('logged verifier is not base64');
  }
  const m = /^\s*-----BEGIN (CERTIFICATE|PUBLIC KEY)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\s*$/.exec(text);
  if (m === null) bodyFail('logged verifier is not a PEM certificate or public key');
  let der: Buffer;
  try {
    der = decodeBase64(m[2]!.replace(/[\r\n]/g, ''), 'logged verifier');
  } catch {
    return bodyFail('logged verifier PEM is not base64');
  }
  return m[1] === 'CERTIFICATE' ? { kind: 'certificate', der } : { kind: 'publicKey', spki: der };
}

function v2Verifier(v: unknown): LoggedVerifier {
  const cert = field(v, 'x509Certificate', 'rawBytes');
  const key = field(v, 'publicKey', 'rawBytes');
  if ((cert === undefined) === (key === undefined)) bodyFail('logged verifier must be one certificate or one key');
  try {
    return cert !== undefined
      ? { kind: 'certificate', der: decodeBase64(cert, 'logged certificate') }
      : { kind: 'publicKey', spki: decodeBase64(key, 'logged key') };
  } catch {
    return bodyFail('logged verifier is not base64');
  }
}

function b64(v: unknown, what: string): Buffer {
  try {
    return decodeBase64(v, what);
  } catch {
    return bodyFail(`${what} is not base64`);
  }
}

function hexDigest(v: unknown, what: string): Buffer {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})+$/.test(v)) bodyFail(`${what} is not lowercase hex`);
  return Buffer.from(v, 'hex');
}

const V1_HASHES: Record<string, HashName> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };
const V2_HASHES: Record<string, HashName> = { SHA2_256: 'sha256', SHA2_384: 'sha384', SHA2_512: 'sha512' };

/** The (algorithm, digest) a hashedrekord entry must record for this content. */
function signedDigest(content: Content, hash: HashName): Buffer {
  if (content.kind === 'message') {
    if (hash !== content.hash) bodyFail('logged digest algorithm differs from the bundle');
    return content.digest;
  }
  // Hashedrekord over DSSE (rekor-v2 spec 6.1.4): the digest of the PAE bytes the signature covers.
  return digest(hash, preAuthEncoding(content.payloadType, content.payload));
}

function singleSignature(list: unknown, what: string): unknown {
  if (!Array.isArray(list) || list.length !== 1) bodyFail(`${what} must hold exactly one signature`);
  return list[0];
}

/**
 * Checks that the logged body records this bundle's signature and digest; returns the logged verifier, which the
 * caller compares with the key that actually verified the signature.
 */
export function checkBody(entry: TlogEntry, content: Content): LoggedVerifier {
  let body: unknown;
  try {
    body = JSON.parse(entry.body.toString('utf8'));
  } catch {
    return bodyFail('tlog entry body is not JSON');
  }
  if (!isObject(body)) bodyFail('tlog entry body is not a JSON object');
  if (body['kind'] !== entry.kind || body['apiVersion'] !== entry.version) {
    bodyFail('tlog entry body kind/version differs from kindVersion');
  }
  const spec = body['spec'];
  const sig = content.signature;
  const key = `${entry.kind}/${entry.version}`;
  switch (key) {
    case 'hashedrekord/0.0.1': {
      const hash = V1_HASHES[String(field(spec, 'data', 'hash', 'algorithm'))];
      if (hash === undefined) bodyFail('unsupported logged digest algorithm');
      if (!hexDigest(field(spec, 'data', 'hash', 'value'), 'logged digest').equals(signedDigest(content, hash))) {
        bodyFail('logged digest differs from the signed content');
      }
      if (!b64(field(spec, 'signature', 'content'), 'logged signature').equals(sig)) bodyFail('logged signature differs');
      return pemVerifier(field(spec, 'signature', 'publicKey', 'content'));
    }
    case 'hashedrekord/0.0.2': {
      const h = field(spec, 'hashedRekordV002');
      const hash = V2_HASHES[String(field(h, 'data', 'algorithm'))];
      if (hash === undefined) bodyFail('unsupported logged digest algorithm');
      if (!b64(field(h, 'data', 'digest'), 'logged digest').equals(signedDigest(content, hash))) {
        bodyFail('logged digest differs from the signed content');
      }
      if (!b64(field(h, 'signature', 'content'), 'logged signature').equals(sig)) bodyFail('logged signature differs');
      return v2Verifier(field(h, 'signature', 'verifier'));
    }
    case 'dsse/0.0.1': {
      if (content.kind !== 'dsse') bodyFail('dsse entry for a non-DSSE bundle');
      if (field(spec, 'payloadHash', 'algorithm') !== 'sha256') bodyFail('unsupported logged payload hash');
      if (!hexDigest(field(spec, 'payloadHash', 'value'), 'logged payload hash').equals(digest('sha256', content.payload))) {
        bodyFail('logged payload hash differs from the envelope payload');
      }
      const s = singleSignature(field(spec, 'signatures'), 'dsse entry');
      if (!b64(field(s, 'signature'), 'logged signature').equals(sig)) bodyFail('logged signature differs');
      return pemVerifier(field(s, 'verifier'));
    }
    case 'dsse/0.0.2': {
      if (content.kind !== 'dsse') bodyFail('dsse entry for a non-DSSE bundle');
      const d = field(spec, 'dsseV002');
      if (field(d, 'payloadHash', 'algorithm') !== 'SHA2_256') bodyFail('unsupported logged payload hash');
      if (!b64(field(d, 'payloadHash', 'digest'), 'logged payload hash').equals(digest('sha256', content.payload))) {
        bodyFail('logged payload hash differs from the envelope payload');
      }
      const s = singleSignature(field(d, 'signatures'), 'dsse entry');
      if (!b64(field(s, 'content'), 'logged signature').equals(sig)) bodyFail('logged signature differs');
      return v2Verifier(field(s, 'verifier'));
    }
    case 'intoto/0.0.2': {
      if (content.kind !== 'dsse') bodyFail('intoto entry for a non-DSSE bundle');
      const c = field(spec, 'content');
      if (field(c, 'payloadHash', 'algorithm') !== 'sha256') bodyFail('unsupported logged payload hash');
      if (!hexDigest(field(c, 'payloadHash', 'value'), 'logged payload hash').equals(digest('sha256', content.payload))) {
        bodyFail('logged payload hash differs from the envelope payload');
      }
      const s = singleSignature(field(c, 'envelope', 'signatures'), 'intoto entry');
      // intoto 0.0.2 stores the signature base64-encoded twice.
      const once = b64(field(s, 'sig'), 'logged signature').toString('latin1');
      let logged: Buffer | undefined;
      try {
        logged = decodeBase64(once, 'logged signature');
      } catch {
        logged = undefined;
      }
      if (logged === undefined || !logged.equals(sig)) bodyFail('logged signature differs');
      return pemVerifier(field(s, 'publicKey'));
    }
    default:
      return reject('TLOG_KIND_UNSUPPORTED', `unsupported tlog entry kind ${key.slice(0, 60)}`);
  }
}

/** The logged verifier must be exactly the certificate, or the same key, that verified the signature. */
export function checkLoggedVerifier(logged: LoggedVerifier, leafDer: Uint8Array | undefined, key: KeyObject): void {
  if (leafDer !== undefined) {
    if (logged.kind !== 'certificate' || !logged.der.equals(leafDer)) bodyFail('logged certificate differs from the bundle certificate');
    return;
  }
  if (logged.kind !== 'publicKey') bodyFail('logged verifier is not a public key');
  let same: boolean;
  try {
    same = key.equals(createPublicKey({ key: logged.spki, format: 'der', type: 'spki' }));
  } catch {
    same = false;
  }
  if (!same) bodyFail('logged public key differs from the verifying key');
}
