/**
 * The audit trail: one record per decision. Records of one Application form a hash chain, so a deleted or edited
 * record is detectable by `verifyAuditChain`; each chain's head can be signed (a checkpoint). This module is the
 * chain itself — record hashing, sealing, checkpoints and verification — over a port; the Redis stream that stores
 * it (durable with AOF, shared by all gate replicas, ordered, trimmed on the operator's terms) is
 * @gitops-gate/gate-store's createAuditTrail.
 */
import { createHash, randomUUID } from 'node:crypto';
import { checkpointOrigin, formatCheckpoint, type CheckpointSigner, type CheckpointVerifier } from './checkpoint.js';

export interface DecisionRecord {
  id: string;
  time: string;
  deliveryId: string;
  repo: string;
  branch: string;
  sha: string;
  app: string;
  action: string;
  reason: string;
  verdict: { outcome: string; method: string; code: string; signer?: string; issuer?: string; logIndex?: string; reasons: string[] };
  policy?: string;
  previousRevision?: string;
  newRevision?: string;
  prevHash: string;
  hash: string;
}

/** `id` may be chosen by the caller (the gate writes it on the Application before recording). */
export type DecisionInput = Omit<DecisionRecord, 'id' | 'time' | 'prevHash' | 'hash'> & { id?: string };

export interface AuditTrail {
  /** Must be called while holding the Application's lock: the chain head is read and advanced without a race. */
  record(input: DecisionInput): Promise<DecisionRecord>;
  query(filter?: { app?: string; sha?: string; since?: Date; limit?: number }): Promise<DecisionRecord[]>;
  /** Whether a record with this id exists (the gate checks the decision id it wrote on an Application). */
  has(id: string): Promise<boolean>;
  /**
   * Applications with at least one final decision about this commit (an index: no scan of the stream). A `deferred-*`
   * record (transient trouble, a verification asked for again) does not count: reconcile queues such a head again.
   */
  decidedApps(sha: string): Promise<Set<string>>;
  /**
   * With `verifiers`, also checks each chain against its latest signed checkpoint: a Redis writer can re-hash a
   * rewritten chain, but cannot sign for it. `external` checkpoints (signed notes kept outside Redis, e.g. from the
   * gate's logs) must also match: they catch a chain rolled back, with its checkpoint, to an older signed state.
   */
  verifyChain(
    app?: string,
    options?: { verifiers?: CheckpointVerifier[]; external?: string[] },
  ): Promise<{ ok: boolean; checked: number; problems: string[]; checkpoints?: number }>;
  /** The latest signed checkpoint of each Application's chain (note text), for /ui and external retention. */
  checkpoints(): Promise<Map<string, string>>;
}

/**
 * What retention removed from an Application's chain: how many records and the hash of the last one, so the retained
 * records still chain from it. Signed (origin `gitops-gate-trim/…`, never valid as a head checkpoint and vice versa)
 * when the gate signs: a Redis writer who deletes records cannot forge the base that would make the rest verify.
 */
export interface TrimBase {
  size: number;
  hash: string;
  /** Decision id of the last trimmed record: kept answering `has` (the Application's annotation may name it). */
  lastId: string;
  note?: string;
}

/** Origin line of a trim base: a different origin than head checkpoints, so neither can stand in for the other. */
export function trimOrigin(cluster: string, app: string): string {
  return `gitops-gate-trim/${cluster}/${app}`;
}

/**
 * The coverage index of a commit expires (refreshed by every final record; by default with the records' retention):
 * reconcile then verifies a long-unchanged head once more (recorded as skip-same), which bounds the index without
 * losing coverage of a live head.
 */
export const FINAL_INDEX_TTL_SECONDS = 30 * 24 * 3600;

/** Signing each chain's head: the gate's key (never stored in Redis) and the cluster name for the origin line. */
export interface AuditSigning {
  signer: CheckpointSigner;
  cluster: string;
}

/** prevHash of an Application's first record. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** Whether a recorded action settles the commit for its Application; `deferred-*` ones wait for another try. */
export function isFinalAction(action: string): boolean {
  // refuse-not-on-branch is about the delivery's claim, not the commit: a commit refused as off-branch that later
  // becomes the branch head (merged by fast-forward) must still be pinned when reconcile finds it there.
  return !action.startsWith('deferred-') && action !== 'refuse-not-on-branch';
}

/** Canonical JSON: keys sorted, so the hash does not depend on property order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function recordHash(record: Omit<DecisionRecord, 'hash'>): string {
  return createHash('sha256').update(canonical(record)).digest('hex');
}

/**
 * The next record of an Application's chain: chained to the stored head (`null`: the chain is new), hashed over all
 * its fields. `id` may be chosen by the caller (the gate writes it on the Application before recording).
 */
export function sealRecord(input: DecisionInput, prevHead: string | null, time: Date): DecisionRecord {
  const base = { ...input, id: input.id ?? randomUUID(), time: time.toISOString(), prevHash: prevHead ?? AUDIT_GENESIS_HASH };
  return { ...base, hash: recordHash(base) };
}

/**
 * The signed checkpoint over a chain whose newest record is `rec` and which now holds `size` records. Signed per
 * record (an Ed25519 signature is ~50 µs) so every pin is covered before the gate reports it, and a checkpoint can
 * never lag its chain.
 */
export function headCheckpointNote(signing: AuditSigning, rec: DecisionRecord, size: number): string {
  return signing.signer.sign(formatCheckpoint({ origin: checkpointOrigin(signing.cluster, rec.app), size, rootHash: rec.hash }));
}

/** The signed note of a trim base (origin `gitops-gate-trim/…`: never valid as a head checkpoint, nor vice versa). */
export function trimBaseNote(signing: AuditSigning, app: string, base: { size: number; hash: string }): string {
  return signing.signer.sign(formatCheckpoint({ origin: trimOrigin(signing.cluster, app), size: base.size, rootHash: base.hash }));
}
