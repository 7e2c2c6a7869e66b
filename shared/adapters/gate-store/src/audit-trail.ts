/**
 * gate-core's AuditTrail in Redis: one record per decision in a stream (durable with AOF, shared by all gate replicas,
 * ordered, trimmed by age on the operator's terms) and in the structured log (for SIEM pipelines). The chain itself —
 * sealing, checkpoints, verification — is gate-core's; this module stores and reads it.
 */
import type { Redis } from 'ioredis';
import {
  FINAL_INDEX_TTL_SECONDS,
  headCheckpointNote,
  isFinalAction,
  sealRecord,
  verifyAuditChain,
  type AuditChainSource,
  type AuditSigning,
  type AuditTrail,
  type DecisionRecord,
  type TrimBase,
} from '@gitops-gate/gate-core';

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

/** The stored trail as verification reads it (gate-core's verifyAuditChain). */
function chainSource(redis: Redis, keys: ReturnType<typeof auditKeys>): AuditChainSource {
  return {
    checkpoints: () => redis.hgetall(keys.checkpoint),
    checkpoint: (app) => redis.hget(keys.checkpoint, app),
    bases: () => redis.hgetall(keys.base),
    head: (app) => redis.get(keys.head(app)),
    async *records() {
      let start = '-';
      for (;;) {
        const page = await redis.xrange(keys.stream, start, '+', 'COUNT', 1000);
        for (const [id, fields] of page) {
          start = `(${id}`;
          yield [id, fields[fields.indexOf('record') + 1]];
        }
        if (page.length < 1000) return;
      }
    },
  };
}

export function createAuditTrail(
  redis: Redis,
  prefix: string,
  now: () => Date = () => new Date(),
  /** Every record is also written here (structured log → SIEM pipelines), after it is stored. */
  onRecord?: (record: DecisionRecord, checkpoint?: string) => void,
  /** Signs a checkpoint after every record (see gate-core's checkpoint.ts); unset = the hash chain alone. */
  signing?: AuditSigning,
  /** How long a commit's coverage index lives after its last final record. */
  finalIndexSeconds = FINAL_INDEX_TTL_SECONDS,
): AuditTrail {
  const keys = auditKeys(prefix);
  const { stream, head: headKey, size: sizeKey, checkpoint: checkpointKey, final: finalKey } = keys;
  const source = chainSource(redis, keys);

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

  /** Commands that go into the record's MULTI: the chain size and, when signing, the checkpoint over the new head. */
  async function checkpointCommands(rec: DecisionRecord): Promise<{ commands: string[][]; note?: string }> {
    const size = (await chainSize(rec.app)) + 1;
    const commands = [['set', sizeKey(rec.app), String(size)]];
    if (!signing) return { commands };
    const note = headCheckpointNote(signing, rec, size);
    commands.push(['hset', checkpointKey, rec.app, note]);
    return { commands, note };
  }

  return {
    async record(input) {
      const rec = sealRecord(input, await redis.get(headKey(input.app)), now());
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
    verifyChain: (app, options) => verifyAuditChain(source, app, options),
  };
}
