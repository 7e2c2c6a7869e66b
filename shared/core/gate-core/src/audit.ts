/**
 * The audit trail: one record per decision, in a Redis stream (durable with AOF, shared by all gate replicas, ordered,
 * trimmed by age on the operator's terms) and in the structured log (for SIEM pipelines). Records of one Application
 * form a hash chain, so a deleted or edited record is detectable by `verifyChain`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { checkpointOrigin, formatCheckpoint, openCheckpoint, type CheckpointSigner, type CheckpointVerifier } from './checkpoint.js';

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

/** Redis keys of the audit trail (retention and tests use them; the README's key table lists them). */
export function auditKeys(prefix: string) {
  return {
    stream: `${prefix}:audit`,
    head: (app: string) => `${prefix}:audit-head:${app}`,
    size: (app: string) => `${prefix}:audit-size:${app}`,
    checkpoint: `${prefix}:audit-checkpoint`,
    base: `${prefix}:audit-base`,
    final: (sha: string) => `${prefix}:audit-final:${sha}`,
    id: (id: string) => `${prefix}:audit-id:${id}`,
    exported: `${prefix}:audit-exported`,
  };
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

const GENESIS = '0'.repeat(64);

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

export function createAuditTrail(
  redis: Redis,
  prefix: string,
  now: () => Date = () => new Date(),
  /** Every record is also written here (structured log → SIEM pipelines), after it is stored. */
  onRecord?: (record: DecisionRecord, checkpoint?: string) => void,
  /** Signs a checkpoint after every record (see checkpoint.ts); unset = the hash chain alone. */
  signing?: AuditSigning,
  /** How long a commit's coverage index lives after its last final record. */
  finalIndexSeconds = FINAL_INDEX_TTL_SECONDS,
): AuditTrail {
  const keys = auditKeys(prefix);
  const { stream, head: headKey, size: sizeKey, checkpoint: checkpointKey, final: finalKey } = keys;

  /** Records in the Application's chain so far; counted once for chains written before sizes were kept. */
  async function chainSize(app: string): Promise<number> {
    const stored = await redis.get(sizeKey(app));
    if (stored !== null) return Number(stored);
    // A new Application has no head either: only chains from before sizes were kept need the one-time count.
    if ((await redis.exists(headKey(app))) === 0) return 0;
    const base = await redis.hget(keys.base, app);
    let n = base ? (JSON.parse(base) as TrimBase).size : 0;
    let start = '-';
    for (;;) {
      const page = await redis.xrange(stream, start, '+', 'COUNT', 1000);
      for (const [id, fields] of page) {
        start = `(${id}`;
        if (fields[fields.indexOf('app') + 1] === app) n += 1;
      }
      if (page.length < 1000) return n;
    }
  }

  /**
   * Commands that go into the record's MULTI: the chain size and, when signing, the checkpoint over the new head.
   * Signed per record (an Ed25519 signature is ~50 µs) so every pin is covered before the gate reports it, and a
   * checkpoint can never lag its chain.
   */
  async function checkpointCommands(rec: DecisionRecord): Promise<{ commands: string[][]; note?: string }> {
    const size = (await chainSize(rec.app)) + 1;
    const commands = [['set', sizeKey(rec.app), String(size)]];
    if (!signing) return { commands };
    const note = signing.signer.sign(formatCheckpoint({ origin: checkpointOrigin(signing.cluster, rec.app), size, rootHash: rec.hash }));
    commands.push(['hset', checkpointKey, rec.app, note]);
    return { commands, note };
  }
  const trail: AuditTrail = {
    async record(input) {
      const prevHash = (await redis.get(headKey(input.app))) ?? GENESIS;
      const base = { ...input, id: input.id ?? randomUUID(), time: now().toISOString(), prevHash };
      const rec: DecisionRecord = { ...base, hash: recordHash(base) };
      const checkpoint = await checkpointCommands(rec);
      const tx = redis
        .multi(checkpoint.commands)
        .xadd(stream, '*', 'app', rec.app, 'sha', rec.sha, 'record', JSON.stringify(rec))
        .set(headKey(rec.app), rec.hash)
        .set(keys.id(rec.id), '1');
      // The coverage index reconcile reads: only decisions that settle the commit (see isFinalAction). It replaces
      // the earlier audit-sha index of every decision, which counted transient refusals as coverage.
      if (isFinalAction(rec.action)) tx.sadd(finalKey(rec.sha), rec.app).expire(finalKey(rec.sha), finalIndexSeconds);
      await tx.exec();
      onRecord?.(rec, checkpoint.note);
      return rec;
    },
    async has(id) {
      return (await redis.exists(keys.id(id))) === 1;
    },
    async decidedApps(sha) {
      return new Set(await redis.smembers(finalKey(sha)));
    },
    async query(filter = {}) {
      const limit = filter.limit ?? 100;
      const out: DecisionRecord[] = [];
      let end = '+';
      const start = filter.since ? String(filter.since.getTime()) : '-';
      // Newest first, in pages, until enough matches are found.
      for (;;) {
        const page = await redis.xrevrange(stream, end, start, 'COUNT', 500);
        if (page.length === 0) break;
        for (const [, fields] of page) {
          const json = fields[fields.indexOf('record') + 1];
          if (!json) continue;
          const rec = JSON.parse(json) as DecisionRecord;
          if (filter.app && rec.app !== filter.app) continue;
          if (filter.sha && !rec.sha.startsWith(filter.sha)) continue;
          out.push(rec);
          if (out.length >= limit) return out;
        }
        const last = page[page.length - 1];
        if (!last || page.length < 500) break;
        end = `(${last[0]}`;
      }
      return out;
    },
    async checkpoints() {
      return new Map(Object.entries(await redis.hgetall(checkpointKey)));
    },
    async verifyChain(app, options = {}) {
      const problems: string[] = [];
      const heads = new Map<string, string>();
      let checked = 0;
      const signed = options.verifiers ? await openCheckpoints(app, options.verifiers, problems) : undefined;
      const external = openExternal(app, options.external ?? [], options.verifiers ?? [], problems);
      const sizes = new Map<string, number>();
      // Chains trimmed by retention start from their base: its hash is the retained head's prevHash.
      for (const [a, base] of await openBases(app, options.verifiers, problems)) {
        heads.set(a, base.hash);
        sizes.set(a, base.size);
      }
      let start = '-';
      for (;;) {
        const page = await redis.xrange(stream, start, '+', 'COUNT', 1000);
        for (const [id, fields] of page) {
          start = `(${id}`;
          const json = fields[fields.indexOf('record') + 1];
          let rec: DecisionRecord;
          try {
            rec = JSON.parse(json ?? '') as DecisionRecord;
          } catch {
            problems.push(`${id}: record is not valid JSON`);
            continue;
          }
          if (app && rec.app !== app) continue;
          checked += 1;
          const { hash, ...rest } = rec;
          if (recordHash(rest) !== hash) problems.push(`${id}: record ${rec.id} of ${rec.app} was modified (hash mismatch)`);
          const expectedPrev = heads.get(rec.app) ?? GENESIS;
          if (rec.prevHash !== expectedPrev)
            problems.push(`${id}: record ${rec.id} of ${rec.app} does not follow the previous record (deleted or reordered)`);
          heads.set(rec.app, hash);
          const n = (sizes.get(rec.app) ?? 0) + 1;
          sizes.set(rec.app, n);
          const cp = signed?.get(rec.app);
          if (cp && cp.size === n && cp.rootHash !== hash) {
            problems.push(
              `${rec.app}: records were rewritten: the signed checkpoint of ${n} records names head ${cp.rootHash}, the chain has ${hash}`,
            );
          }
          for (const e of external.get(rec.app) ?? []) {
            if (e.size === n && e.rootHash !== hash)
              problems.push(
                `${rec.app}: records were rewritten: an external checkpoint of ${n} records names head ${e.rootHash}, the chain has ${hash}`,
              );
          }
        }
        if (page.length < 1000) break;
      }
      // The stored head must be the last record: catches deletion of the newest records.
      for (const [a, h] of heads) {
        const stored = await redis.get(headKey(a));
        if (stored !== h) problems.push(`${a}: newest record is missing (chain head ${stored ?? 'none'} ≠ last record ${h})`);
      }
      if (signed && options.verifiers) await compareWithCheckpoints(signed, sizes, heads, options.verifiers, problems);
      for (const [a, list] of external) {
        const longest = Math.max(...list.map((e) => e.size));
        const n = sizes.get(a) ?? 0;
        if (n < longest)
          problems.push(`${a}: records were deleted or rolled back: an external checkpoint covers ${longest}, the chain has ${n}`);
      }
      return { ok: problems.length === 0, checked, problems, ...(signed ? { checkpoints: signed.size } : {}) };
    },
  };
  // A trim between reading the bases and reading the stream looks like deleted records: if the bases moved meanwhile,
  // verify again (a trim is one MULTI, so the second pass sees bases and stream of one state).
  const verifyOnce = trail.verifyChain.bind(trail);
  trail.verifyChain = async (app, options) => {
    const bases = JSON.stringify(await redis.hgetall(keys.base));
    const result = await verifyOnce(app, options);
    if (result.ok || JSON.stringify(await redis.hgetall(keys.base)) === bases) return result;
    return verifyOnce(app, options);
  };
  return trail;

  /**
   * Trim bases by Application. With verifiers a base counts only if signed as a trim base by a trusted key: otherwise
   * whoever deletes the oldest records could write a base that makes the rest verify.
   */
  async function openBases(app: string | undefined, verifiers: CheckpointVerifier[] | undefined, problems: string[]) {
    const out = new Map<string, { size: number; hash: string }>();
    for (const [a, json] of Object.entries(await redis.hgetall(keys.base))) {
      if (app && a !== app) continue;
      let base: TrimBase;
      try {
        base = JSON.parse(json) as TrimBase;
      } catch {
        problems.push(`${a}: trim base is not valid JSON`);
        continue;
      }
      if (verifiers) {
        try {
          if (!base.note) throw new Error('unsigned');
          const cp = openCheckpoint(base.note, verifiers);
          if (!cp.origin.startsWith('gitops-gate-trim/') || !cp.origin.endsWith(`/${a}`)) throw new Error(`signed for ${cp.origin}`);
          if (cp.size !== base.size || cp.rootHash !== base.hash) throw new Error('its signed note names another size or hash');
        } catch (err) {
          problems.push(`${a}: trim base rejected (${(err as Error).message}): records before the retained ones are unaccounted for`);
          continue;
        }
      }
      out.set(a, { size: base.size, hash: base.hash });
    }
    return out;
  }

  /** The verified latest checkpoint per Application (of `app` only, if given); what fails to verify is a problem. */
  async function openCheckpoints(app: string | undefined, verifiers: CheckpointVerifier[], problems: string[]) {
    const out = new Map<string, { size: number; rootHash: string }>();
    for (const [a, note] of Object.entries(await redis.hgetall(checkpointKey))) {
      if (app && a !== app) continue;
      const cp = openAppCheckpoint(a, note, verifiers, problems);
      if (cp) out.set(a, cp);
    }
    return out;
  }

  /** External checkpoints by Application (from their origin lines), each verified; bad ones are problems. */
  function openExternal(app: string | undefined, notes: string[], verifiers: CheckpointVerifier[], problems: string[]) {
    const out = new Map<string, { size: number; rootHash: string }[]>();
    for (const [i, note] of notes.entries()) {
      const origin = /^gitops-gate\/[^/\n]+\/([^/\n]+\/[^/\n]+)\n/.exec(note);
      if (!origin?.[1]) {
        problems.push(`external checkpoint ${i + 1}: origin is not gitops-gate/<cluster>/<namespace>/<name>`);
        continue;
      }
      const a = origin[1];
      if (app && a !== app) continue;
      const cp = openAppCheckpoint(a, note, verifiers, problems);
      if (cp) out.set(a, [...(out.get(a) ?? []), cp]);
    }
    return out;
  }

  function openAppCheckpoint(app: string, note: string, verifiers: CheckpointVerifier[], problems: string[]) {
    try {
      const cp = openCheckpoint(note, verifiers);
      // The origin binds the checkpoint to this Application: one signed for another must not vouch for this chain.
      if (!cp.origin.startsWith('gitops-gate/') || !cp.origin.endsWith(`/${app}`)) {
        problems.push(`${app}: signed checkpoint is for ${cp.origin}, not this Application`);
        return undefined;
      }
      return cp;
    } catch (err) {
      problems.push(`${app}: signed checkpoint rejected: ${(err as Error).message}`);
      return undefined;
    }
  }

  async function compareWithCheckpoints(
    signed: Map<string, { size: number; rootHash: string }>,
    sizes: Map<string, number>,
    heads: Map<string, string>,
    verifiers: CheckpointVerifier[],
    problems: string[],
  ) {
    for (const [a, n] of sizes) {
      let cp = signed.get(a);
      if (cp && n > cp.size) {
        // The gate may have recorded while we read the stream: its newer checkpoint must then cover exactly this.
        const again = await redis.hget(checkpointKey, a);
        const fresh = again ? openAppCheckpoint(a, again, verifiers, []) : undefined;
        if (fresh && fresh.size === n && fresh.rootHash === heads.get(a)) cp = fresh;
      }
      if (!cp) {
        if (!problems.some((p) => p.startsWith(`${a}: signed checkpoint`)))
          problems.push(`${a}: no signed checkpoint covers its ${n} records`);
      } else if (n > cp.size) {
        problems.push(`${a}: ${n - cp.size} of ${n} records are not covered by the signed checkpoint (added without the key)`);
      }
    }
    for (const [a, cp] of signed) {
      const n = sizes.get(a) ?? 0;
      if (n < cp.size) problems.push(`${a}: records were deleted: the signed checkpoint covers ${cp.size}, the chain has ${n}`);
    }
  }
}
