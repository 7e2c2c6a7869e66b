/**
 * The audit trail: one record per decision, in a Redis stream (durable with AOF, shared by all gate replicas, ordered,
 * trimmed by age on the operator's terms) and in the structured log (for SIEM pipelines). Records of one Application
 * form a hash chain, so a deleted or edited record is detectable by `verifyChain`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

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
  /** Applications with at least one decision about this commit (an index: no scan of the stream). */
  decidedApps(sha: string): Promise<Set<string>>;
  verifyChain(app?: string): Promise<{ ok: boolean; checked: number; problems: string[] }>;
}

const GENESIS = '0'.repeat(64);

/** Canonical JSON: keys sorted, so the hash does not depend on property order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
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
  onRecord?: (record: DecisionRecord) => void,
): AuditTrail {
  const stream = `${prefix}:audit`;
  const headKey = (app: string) => `${prefix}:audit-head:${app}`;
  return {
    async record(input) {
      const prevHash = (await redis.get(headKey(input.app))) ?? GENESIS;
      const base = { ...input, id: input.id ?? randomUUID(), time: now().toISOString(), prevHash };
      const rec: DecisionRecord = { ...base, hash: recordHash(base) };
      await redis
        .multi()
        .xadd(stream, '*', 'app', rec.app, 'sha', rec.sha, 'record', JSON.stringify(rec))
        .set(headKey(rec.app), rec.hash)
        .set(`${prefix}:audit-id:${rec.id}`, '1')
        .sadd(`${prefix}:audit-sha:${rec.sha}`, rec.app)
        .exec();
      onRecord?.(rec);
      return rec;
    },
    async has(id) {
      return (await redis.exists(`${prefix}:audit-id:${id}`)) === 1;
    },
    async decidedApps(sha) {
      return new Set(await redis.smembers(`${prefix}:audit-sha:${sha}`));
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
        for (const [id, fields] of page) {
          const json = fields[fields.indexOf('record') + 1];
          if (!json) continue;
          const rec = JSON.parse(json) as DecisionRecord;
          if (filter.app && rec.app !== filter.app) continue;
          if (filter.sha && !rec.sha.startsWith(filter.sha)) continue;
          out.push(rec);
          if (out.length >= limit) return out;
          end = `(${id}`;
        }
        const last = page[page.length - 1];
        if (!last || page.length < 500) break;
        end = `(${last[0]}`;
      }
      return out;
    },
    async verifyChain(app) {
      const problems: string[] = [];
      const heads = new Map<string, string>();
      let checked = 0;
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
          if (rec.prevHash !== expectedPrev) problems.push(`${id}: record ${rec.id} of ${rec.app} does not follow the previous record (deleted or reordered)`);
          heads.set(rec.app, hash);
        }
        if (page.length < 1000) break;
      }
      // The stored head must be the last record: catches deletion of the newest records.
      for (const [a, h] of heads) {
        const stored = await redis.get(headKey(a));
        if (stored !== h) problems.push(`${a}: newest record is missing (chain head ${stored ?? 'none'} ≠ last record ${h})`);
      }
      return { ok: problems.length === 0, checked, problems };
    },
  };
}
