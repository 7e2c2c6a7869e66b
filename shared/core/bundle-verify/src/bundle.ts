// Structural parsing of a Sigstore bundle (protobuf JSON, v0.1–v0.3) into decoded bytes. Only shape and encoding are
// checked here; nothing is trusted yet.
import { decodeBase64, isObject, parseUint } from './encoding.js';
import { reject } from './errors.js';
import type { HashName } from './keys.js';

export type BundleVersion = '0.1' | '0.2' | '0.3';

export interface InclusionProof {
  logIndex: bigint;
  rootHash: Buffer;
  treeSize: bigint;
  hashes: Buffer[];
  checkpoint: string;
}

export interface TlogEntry {
  logIndex: bigint;
  logId: Buffer;
  kind: string;
  version: string;
  /** 0n when absent (Rekor v2 entries have no integrated time). */
  integratedTime: bigint;
  signedEntryTimestamp?: Buffer;
  inclusionProof?: InclusionProof;
  body: Buffer;
}

export type Content =
  | { kind: 'message'; hash: HashName; digest: Buffer; signature: Buffer }
  | { kind: 'dsse'; payloadType: string; payload: Buffer; signature: Buffer };

export type Material = { kind: 'certificate'; leaf: Buffer; rest: Buffer[] } | { kind: 'publicKey'; hint: string };

export interface Bundle {
  version: BundleVersion;
  content: Content;
  material: Material;
  tlogEntries: TlogEntry[];
  timestamps: Buffer[];
}

const MEDIA_TYPES: Record<string, BundleVersion> = {
  'application/vnd.dev.sigstore.bundle+json;version=0.1': '0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2': '0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.3': '0.3',
  'application/vnd.dev.sigstore.bundle.v0.3+json': '0.3',
};

const HASHES: Record<string, HashName> = { SHA2_256: 'sha256', SHA2_384: 'sha384', SHA2_512: 'sha512' };

function invalid(reason: string): never {
  return reject('BUNDLE_INVALID', reason);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (!isObject(v)) invalid(`${what} is missing or not an object`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') invalid(`${what} is missing or not a string`);
  return v;
}

function nonEmpty(b: Buffer, what: string): Buffer {
  if (b.length === 0) invalid(`${what} is empty`);
  return b;
}

function exactlyOne(o: Record<string, unknown>, keys: string[], what: string): string {
  const present = keys.filter((k) => o[k] !== undefined && o[k] !== null);
  if (present.length !== 1) invalid(`${what} must have exactly one of ${keys.join(', ')}`);
  return present[0]!;
}

function parseContent(b: Record<string, unknown>): Content {
  const which = exactlyOne(b, ['messageSignature', 'dsseEnvelope'], 'bundle content');
  if (which === 'messageSignature') {
    const ms = obj(b['messageSignature'], 'messageSignature');
    const md = obj(ms['messageDigest'], 'messageSignature.messageDigest');
    const hash = HASHES[str(md['algorithm'], 'messageDigest.algorithm')];
    if (hash === undefined) reject('BUNDLE_UNSUPPORTED', 'unsupported message digest algorithm');
    return {
      kind: 'message',
      hash,
      digest: nonEmpty(decodeBase64(md['digest'], 'messageDigest.digest'), 'messageDigest.digest'),
      signature: nonEmpty(decodeBase64(ms['signature'], 'messageSignature.signature'), 'messageSignature.signature'),
    };
  }
  const env = obj(b['dsseEnvelope'], 'dsseEnvelope');
  const sigs = env['signatures'];
  if (!Array.isArray(sigs) || sigs.length !== 1) invalid('DSSE envelope must carry exactly one signature');
  const sig = obj(sigs[0], 'dsseEnvelope.signatures[0]');
  return {
    kind: 'dsse',
    payloadType: str(env['payloadType'], 'dsseEnvelope.payloadType'),
    payload: nonEmpty(decodeBase64(env['payload'], 'dsseEnvelope.payload'), 'dsseEnvelope.payload'),
    signature: nonEmpty(decodeBase64(sig['sig'], 'dsseEnvelope signature'), 'dsseEnvelope signature'),
  };
}

function parseMaterial(vm: Record<string, unknown>, version: BundleVersion): Material {
  const which = exactlyOne(vm, ['x509CertificateChain', 'certificate', 'publicKey'], 'verificationMaterial');
  if (which === 'publicKey') {
    const pk = obj(vm['publicKey'], 'publicKey');
    return { kind: 'publicKey', hint: typeof pk['hint'] === 'string' ? pk['hint'] : '' };
  }
  if (which === 'certificate') {
    const c = obj(vm['certificate'], 'certificate');
    return { kind: 'certificate', leaf: nonEmpty(decodeBase64(c['rawBytes'], 'certificate.rawBytes'), 'certificate'), rest: [] };
  }
  // v0.3 replaced the chain by a single leaf certificate.
  if (version === '0.3') invalid('v0.3 bundles must not carry x509CertificateChain');
  const chain = obj(vm['x509CertificateChain'], 'x509CertificateChain');
  const certs = chain['certificates'];
  if (!Array.isArray(certs) || certs.length === 0) invalid('certificate chain is empty');
  const ders = certs.map((c, i) => nonEmpty(decodeBase64(obj(c, `certificates[${i}]`)['rawBytes'], `certificates[${i}]`), 'certificate'));
  return { kind: 'certificate', leaf: ders[0]!, rest: ders.slice(1) };
}

function parseEntry(e: unknown, i: number, version: BundleVersion): TlogEntry {
  const what = `tlogEntries[${i}]`;
  const o = obj(e, what);
  const kv = obj(o['kindVersion'], `${what}.kindVersion`);
  const entry: TlogEntry = {
    // Protobuf JSON omits int64 fields that are zero: a missing index is entry 0 (the first of a fresh log shard).
    logIndex: o['logIndex'] === undefined ? 0n : parseUint(o['logIndex'], `${what}.logIndex`),
    logId: nonEmpty(decodeBase64(obj(o['logId'], `${what}.logId`)['keyId'], `${what}.logId.keyId`), `${what}.logId`),
    kind: str(kv['kind'], `${what}.kindVersion.kind`),
    version: str(kv['version'], `${what}.kindVersion.version`),
    integratedTime:
      o['integratedTime'] === undefined || o['integratedTime'] === null ? 0n : parseUint(o['integratedTime'], `${what}.integratedTime`),
    body: nonEmpty(decodeBase64(o['canonicalizedBody'], `${what}.canonicalizedBody`), `${what}.canonicalizedBody`),
  };
  if (o['inclusionPromise'] !== undefined && o['inclusionPromise'] !== null) {
    const p = obj(o['inclusionPromise'], `${what}.inclusionPromise`);
    entry.signedEntryTimestamp = nonEmpty(decodeBase64(p['signedEntryTimestamp'], `${what} SET`), `${what} SET`);
  }
  if (o['inclusionProof'] !== undefined && o['inclusionProof'] !== null) {
    const p = obj(o['inclusionProof'], `${what}.inclusionProof`);
    const hashes = p['hashes'] ?? [];
    if (!Array.isArray(hashes)) invalid(`${what}.inclusionProof.hashes is not an array`);
    // A proof without a signed checkpoint proves nothing offline.
    const cp = obj(p['checkpoint'], `${what}.inclusionProof.checkpoint`);
    entry.inclusionProof = {
      logIndex: p['logIndex'] === undefined ? 0n : parseUint(p['logIndex'], `${what}.inclusionProof.logIndex`),
      rootHash: decodeBase64(p['rootHash'], `${what}.inclusionProof.rootHash`),
      treeSize: parseUint(p['treeSize'], `${what}.inclusionProof.treeSize`),
      hashes: hashes.map((h, j) => decodeBase64(h, `${what}.inclusionProof.hashes[${j}]`)),
      checkpoint: str(cp['envelope'], `${what}.inclusionProof.checkpoint.envelope`),
    };
  }
  if (version === '0.1' && entry.signedEntryTimestamp === undefined) invalid(`${what}: v0.1 bundles require an inclusion promise`);
  if (version !== '0.1' && entry.inclusionProof === undefined) invalid(`${what}: v0.2+ bundles require an inclusion proof`);
  return entry;
}

export function parseBundle(json: unknown): Bundle {
  const b = obj(json, 'bundle');
  const mediaType = b['mediaType'];
  const version = typeof mediaType === 'string' ? MEDIA_TYPES[mediaType] : undefined;
  if (version === undefined)
    reject('BUNDLE_UNSUPPORTED_VERSION', `unsupported bundle mediaType ${JSON.stringify(mediaType)?.slice(0, 100)}`);
  const vm = obj(b['verificationMaterial'], 'verificationMaterial');
  const entries = vm['tlogEntries'] ?? [];
  if (!Array.isArray(entries)) invalid('tlogEntries is not an array');
  const tsd = vm['timestampVerificationData'];
  let timestamps: Buffer[] = [];
  if (tsd !== undefined && tsd !== null) {
    const list = obj(tsd, 'timestampVerificationData')['rfc3161Timestamps'] ?? [];
    if (!Array.isArray(list)) invalid('rfc3161Timestamps is not an array');
    timestamps = list.map((t, i) =>
      nonEmpty(decodeBase64(obj(t, `rfc3161Timestamps[${i}]`)['signedTimestamp'], 'signedTimestamp'), 'signedTimestamp'),
    );
  }
  return {
    version,
    content: parseContent(b),
    material: parseMaterial(vm, version),
    tlogEntries: entries.map((e, i) => parseEntry(e, i, version)),
    timestamps,
  };
}
