/**
 * Audit trail retention: the stream is trimmed by age and/or length (XTRIM MINID), and each Application whose oldest
 * records go keeps a trim base (count + hash of its last trimmed record, signed when the gate signs) so
 * `--verify-chain` still verifies the retained records. `exportRecords` streams records out (JSONL) before that.
 */
import type { Redis } from 'ioredis';
import { trimBaseNote, type AuditSigning, type DecisionRecord, type TrimBase } from '@gitops-gate/gate-core';
import { auditKeys } from './audit-trail.js';

export interface RetentionPolicy {
  /** Records older than this go (0 = no age limit). */
  maxAgeSeconds: number;
  /** At most this many records stay (0 = no count limit). */
  maxRecords: number;
  /** Only records already exported (`gitops-gate audit export --mark`) may go. */
  requireExport: boolean;
}

export interface TrimResult {
  trimmed: number;
  apps: number;
  /** Records were due but kept because they were not exported yet. */
  heldForExport: boolean;
}

/** Records trimmed per call: one call stays short; the next interval continues. */
const BATCH = 10_000;
const PAGE = 1000;

function streamIdLess(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am < bm || (am === bm && as < bs);
}

function nextId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}

/**
 * Trims one batch. Must run in one process at a time (the gate holds a lease): two trims could both advance a base.
 * Records written meanwhile get newer stream ids than the cut, so the gate's record() needs no coordination.
 */
export async function trimAuditTrail(
  redis: Redis,
  prefix: string,
  policy: RetentionPolicy,
  now: Date,
  signing?: AuditSigning,
): Promise<TrimResult> {
  const keys = auditKeys(prefix);
  const length = await redis.xlen(keys.stream);
  const overCount = policy.maxRecords > 0 ? Math.max(0, length - policy.maxRecords) : 0;
  const ageCut = policy.maxAgeSeconds > 0 ? `${now.getTime() - policy.maxAgeSeconds * 1000}-0` : undefined;
  const exported = policy.requireExport ? ((await redis.get(keys.exported)) ?? '0-0') : undefined;
  const bases = new Map<string, TrimBase>();
  for (const [app, json] of Object.entries(await redis.hgetall(keys.base))) bases.set(app, JSON.parse(json) as TrimBase);
  const changed = new Map<string, TrimBase>();
  const dropIds: string[] = [];
  let lastTrimmed: string | undefined;
  let taken = 0;
  let heldForExport = false;
  let start = '-';
  scan: for (;;) {
    const page = await redis.xrange(keys.stream, start, '+', 'COUNT', PAGE);
    for (const [id, fields] of page) {
      start = `(${id}`;
      const due = taken < overCount || (ageCut !== undefined && streamIdLess(id, ageCut));
      if (!due || taken >= BATCH) break scan;
      if (exported !== undefined && !streamIdLess(id, nextId(exported))) {
        heldForExport = true;
        break scan;
      }
      const rec = JSON.parse(fields[fields.indexOf('record') + 1] ?? '{}') as DecisionRecord;
      const prior = changed.get(rec.app) ?? bases.get(rec.app);
      // The previous base's kept id is no longer the newest trimmed decision of this Application: let it go.
      if (prior?.lastId) dropIds.push(keys.id(prior.lastId));
      changed.set(rec.app, { size: (prior?.size ?? 0) + 1, hash: rec.hash, lastId: rec.id });
      lastTrimmed = id;
      taken += 1;
    }
    if (page.length < PAGE) break;
  }
  if (!lastTrimmed) return { trimmed: 0, apps: 0, heldForExport };
  const tx = redis.multi();
  for (const [app, base] of changed) {
    const note = signing ? trimBaseNote(signing, app, base) : undefined;
    tx.hset(keys.base, app, JSON.stringify({ ...base, ...(note ? { note } : {}) }));
  }
  const keep = new Set([...changed.values()].map((b) => keys.id(b.lastId)));
  const drop = dropIds.filter((k) => !keep.has(k));
  if (drop.length > 0) tx.del(...drop);
  tx.xtrim(keys.stream, 'MINID', nextId(lastTrimmed));
  await tx.exec();
  return { trimmed: taken, apps: changed.size, heldForExport };
}

/**
 * Writes records (oldest first) after the export mark (or all) as JSON lines; with `mark`, advances the mark so
 * the next export continues there and retention with `requireExport` may trim them.
 */
export async function exportAuditRecords(
  redis: Redis,
  prefix: string,
  write: (line: string) => Promise<void> | void,
  options: { sinceMark: boolean; mark: boolean },
): Promise<{ exported: number; lastId?: string }> {
  const keys = auditKeys(prefix);
  const from = options.sinceMark ? await redis.get(keys.exported) : null;
  let start = from ? `(${from}` : '-';
  let exported = 0;
  let lastId: string | undefined;
  for (;;) {
    const page = await redis.xrange(keys.stream, start, '+', 'COUNT', PAGE);
    for (const [id, fields] of page) {
      start = `(${id}`;
      lastId = id;
      await write(`${fields[fields.indexOf('record') + 1] ?? '{}'}\n`);
      exported += 1;
    }
    if (page.length < PAGE) break;
  }
  if (options.mark && lastId) {
    // Never moves backwards (two exports racing): only a larger id replaces the mark.
    const current = await redis.get(keys.exported);
    if (!current || streamIdLess(current, lastId)) await redis.set(keys.exported, lastId);
  }
  return { exported, ...(lastId ? { lastId } : {}) };
}
