/**
 * The Rekor entry gitsign embeds in a signature, and the hashedrekord body it stands for.
 *
 * gitsign stores a binary `dev.sigstore.rekor.v1.TransparencyLogEntry` protobuf as the single OCTET STRING value of
 * the unsigned attribute 1.3.6.1.4.1.57264.3.1, with `canonicalized_body` cleared: the body is recomputed from the
 * signed attributes, the signature and the certificate (so the log proof only verifies if it really covers THIS
 * signature by THIS certificate). Only the fields gitsign writes are accepted; the decoder is strict (unknown or
 * duplicate fields, truncation, overlong varints are errors) so no two parsers can read different entries out of the
 * same bytes.
 */
import { createHash } from 'node:crypto';
import { json as sigstoreJson, pem } from '@sigstore/core';

export interface EmbeddedInclusionProof {
  logIndex: bigint;
  rootHash: Buffer;
  treeSize: bigint;
  hashes: Buffer[];
  checkpoint: string | undefined;
}

export interface EmbeddedTlogEntry {
  logIndex: bigint;
  logId: Buffer;
  kind: string | undefined;
  version: string | undefined;
  integratedTime: bigint;
  signedEntryTimestamp: Buffer | undefined;
  inclusionProof: EmbeddedInclusionProof | undefined;
  canonicalizedBody: Buffer | undefined;
}

export class TlogEntryDecodeError extends Error {}

const MAX_INT64 = (1n << 63n) - 1n;

class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new TlogEntryDecodeError('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new TlogEntryDecodeError('non-minimal varint');
        return result;
      }
    }
    throw new TlogEntryDecodeError('varint longer than 10 bytes');
  }

  int64(): bigint {
    const v = this.varint();
    if (v > MAX_INT64) throw new TlogEntryDecodeError('negative or oversized int64');
    return v;
  }

  bytes(): Buffer {
    const len = this.varint();
    if (len > BigInt(this.buf.length - this.pos)) throw new TlogEntryDecodeError('length-delimited field runs past the end');
    const start = this.pos;
    this.pos += Number(len);
    return Buffer.from(this.buf.subarray(start, this.pos));
  }
}

type FieldHandler = (r: ProtoReader, wireType: number) => void;

/** Walks a message, dispatching its fields (each singular field at most once). */
function readMessage(buf: Uint8Array, handlers: Record<number, { wire: number; repeated?: boolean; read: FieldHandler }>): void {
  const r = new ProtoReader(buf);
  const seen = new Set<number>();
  while (!r.done) {
    const key = r.varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new TlogEntryDecodeError('field number 0');
    const h = handlers[field];
    // gitsign writes a fixed set of fields; an unknown one is corruption (or smuggling), not a newer schema.
    if (!h) throw new TlogEntryDecodeError(`unexpected field ${field} (wire type ${wireType})`);
    if (wireType !== h.wire) throw new TlogEntryDecodeError(`field ${field} has wire type ${wireType}, expected ${h.wire}`);
    if (!h.repeated) {
      if (seen.has(field)) throw new TlogEntryDecodeError(`field ${field} appears twice`);
      seen.add(field);
    }
    h.read(r, wireType);
  }
}

const VARINT = 0;
const LEN = 2;

function utf8Strict(b: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new TlogEntryDecodeError('string field is not UTF-8');
  }
}

/** Decodes the binary TransparencyLogEntry protobuf. Throws TlogEntryDecodeError on anything malformed. */
export function decodeTransparencyLogEntry(buf: Uint8Array): EmbeddedTlogEntry {
  const out: EmbeddedTlogEntry = {
    logIndex: 0n,
    logId: Buffer.alloc(0),
    kind: undefined,
    version: undefined,
    integratedTime: 0n,
    signedEntryTimestamp: undefined,
    inclusionProof: undefined,
    canonicalizedBody: undefined,
  };
  let hasLogId = false;
  readMessage(buf, {
    1: { wire: VARINT, read: (r) => (out.logIndex = r.int64()) },
    2: {
      wire: LEN,
      read: (r) => {
        hasLogId = true;
        readMessage(r.bytes(), { 1: { wire: LEN, read: (s) => (out.logId = s.bytes()) } });
      },
    },
    3: {
      wire: LEN,
      read: (r) =>
        readMessage(r.bytes(), {
          1: { wire: LEN, read: (s) => (out.kind = utf8Strict(s.bytes())) },
          2: { wire: LEN, read: (s) => (out.version = utf8Strict(s.bytes())) },
        }),
    },
    4: { wire: VARINT, read: (r) => (out.integratedTime = r.int64()) },
    5: {
      wire: LEN,
      read: (r) => {
        out.signedEntryTimestamp = Buffer.alloc(0);
        readMessage(r.bytes(), { 1: { wire: LEN, read: (s) => (out.signedEntryTimestamp = s.bytes()) } });
      },
    },
    6: {
      wire: LEN,
      read: (r) => {
        const proof: EmbeddedInclusionProof = { logIndex: 0n, rootHash: Buffer.alloc(0), treeSize: 0n, hashes: [], checkpoint: undefined };
        readMessage(r.bytes(), {
          1: { wire: VARINT, read: (s) => (proof.logIndex = s.int64()) },
          2: { wire: LEN, read: (s) => (proof.rootHash = s.bytes()) },
          3: { wire: VARINT, read: (s) => (proof.treeSize = s.int64()) },
          4: { wire: LEN, repeated: true, read: (s) => proof.hashes.push(s.bytes()) },
          5: {
            wire: LEN,
            read: (s) => {
              proof.checkpoint = '';
              readMessage(s.bytes(), { 1: { wire: LEN, read: (t) => (proof.checkpoint = utf8Strict(t.bytes())) } });
            },
          },
        });
        out.inclusionProof = proof;
      },
    },
    7: { wire: LEN, read: (r) => (out.canonicalizedBody = r.bytes()) },
  });
  if (!hasLogId || out.logId.length === 0) throw new TlogEntryDecodeError('entry has no log id');
  return out;
}

/**
 * The canonical (RFC 8785) hashedrekord v0.0.1 body Rekor stores for `signature` by `certDer` over an artifact with
 * SHA-256 `artifactDigest` — byte-for-byte what gitsign uploads (certificate as PEM with 64-column lines).
 */
export function hashedRekordBody(artifactDigest: Buffer, signature: Buffer, certDer: Buffer): Buffer {
  const certPem = pem.fromDER(certDer, 'CERTIFICATE');
  const body = {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: artifactDigest.toString('hex') } },
      signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(certPem, 'utf8').toString('base64') } },
    },
  };
  return Buffer.from(sigstoreJson.canonicalize(body), 'utf8');
}

export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}
