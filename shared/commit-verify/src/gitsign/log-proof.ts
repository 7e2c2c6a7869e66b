/**
 * Rekor (v1) proofs that a body was logged: the signed entry timestamp (SET) and the RFC 6962 inclusion proof under a
 * signed checkpoint. Both are checked against the trusted root's keys for the entry's log id only.
 */
import { createHash } from 'node:crypto';
import { json as sigstoreJson } from '@sigstore/core';
import type { SigstoreLogAuthority } from '../sigstore-trust.js';
import { verifyWithLogKey } from './x509.js';

export interface InclusionProofInput {
  /** Leaf index within the tree the checkpoint describes (Rekor shards: not the global log index). */
  logIndex: bigint;
  rootHash: Buffer;
  treeSize: bigint;
  hashes: Buffer[];
  checkpoint: string;
}

/**
 * The SET is the log's signature over {body, integratedTime, logIndex, logID} (canonical JSON), made when the entry
 * was integrated; `keys` are the log's keys valid at the integrated time.
 */
export function verifySignedEntryTimestamp(
  keys: readonly SigstoreLogAuthority[],
  entry: { body: Buffer; integratedTime: bigint; logIndex: bigint; logId: Buffer },
  set: Buffer,
): boolean {
  const payload = Buffer.from(
    sigstoreJson.canonicalize({
      body: entry.body.toString('base64'),
      integratedTime: Number(entry.integratedTime),
      logIndex: Number(entry.logIndex),
      logID: entry.logId.toString('hex'),
    }),
    'utf8',
  );
  return keys.some((k) => verifyWithLogKey(payload, k.publicKey, set));
}

/** undefined when the proof holds; otherwise why not. */
export function verifyInclusionProof(keys: readonly SigstoreLogAuthority[], body: Buffer, proof: InclusionProofInput): string | undefined {
  const cp = parseCheckpoint(proof.checkpoint);
  if (typeof cp === 'string') return cp;
  // Signed by one of this log's keys, with the key hint (first 4 bytes of the log id) naming it.
  const signed = cp.signatures.some((s) => keys.some((k) => k.logID.subarray(0, 4).equals(s.keyHint) && verifyWithLogKey(cp.note, k.publicKey, s.signature)));
  if (!signed) return 'checkpoint is not signed by the log';
  if (cp.size !== proof.treeSize) return 'inclusion proof tree size differs from its checkpoint';
  if (!cp.rootHash.equals(proof.rootHash)) return 'inclusion proof root hash differs from its checkpoint';
  const leaf = createHash('sha256').update(Buffer.from([0])).update(body).digest();
  const root = rootFromInclusionProof(proof.logIndex, proof.treeSize, leaf, proof.hashes);
  if (!root) return 'inclusion proof has the wrong shape for its index and tree size';
  if (!root.equals(cp.rootHash)) return 'inclusion proof does not lead to the checkpoint root hash';
  return undefined;
}

interface Checkpoint {
  /** The signed text: everything up to and including the newline before the blank line. */
  note: Buffer;
  size: bigint;
  rootHash: Buffer;
  signatures: Array<{ keyHint: Buffer; signature: Buffer }>;
}

/** A signed note (transparency-dev checkpoint format); strict, with canonical base64 everywhere. */
function parseCheckpoint(envelope: string): Checkpoint | string {
  const sep = envelope.indexOf('\n\n');
  if (sep < 0) return 'checkpoint has no signature block';
  const lines = envelope.slice(0, sep).split('\n');
  const [origin, size, root] = lines;
  if (!origin || size === undefined || root === undefined || !/^(0|[1-9][0-9]{0,18})$/.test(size)) return 'checkpoint is malformed';
  const rootHash = canonicalBase64(root);
  if (!rootHash || rootHash.length !== 32) return 'checkpoint root hash is malformed';
  const sigLines = envelope.slice(sep + 2).split('\n');
  if (sigLines.pop() !== '' || sigLines.length === 0) return 'checkpoint signatures are malformed';
  const signatures: Checkpoint['signatures'] = [];
  // The signer's name must be the log's own name as the signed origin line states it ("<name> - <tree id>" in Rekor
  // v1, the bare origin otherwise): unsigned text that could change freely would not be a checkpoint we verified.
  const logName = origin.split(' - ')[0];
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    const raw = m ? canonicalBase64(m[2]!) : undefined;
    if (!raw || raw.length < 5) return 'checkpoint signatures are malformed';
    if (m![1] !== logName && m![1] !== origin) return 'checkpoint signature is not by the log named in its origin';
    signatures.push({ keyHint: raw.subarray(0, 4), signature: raw.subarray(4) });
  }
  return { note: Buffer.from(envelope.slice(0, sep + 1), 'utf8'), size: BigInt(size), rootHash, signatures };
}

function canonicalBase64(s: string): Buffer | undefined {
  const b = Buffer.from(s, 'base64');
  return s.length > 0 && b.toString('base64') === s ? b : undefined;
}

/** RFC 9162 §2.1.3.2: the root an audit path leads to, or undefined when the path cannot belong to (index, size). */
function rootFromInclusionProof(index: bigint, size: bigint, leaf: Buffer, path: Buffer[]): Buffer | undefined {
  if (index < 0n || index >= size) return undefined;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (p.length !== 32 || sn === 0n) return undefined;
    if ((fn & 1n) === 1n || fn === sn) {
      r = node(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = node(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : undefined;
}

function node(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(Buffer.from([1])).update(left).update(right).digest();
}
