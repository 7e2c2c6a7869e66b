/**
 * Audit trail retention in Redis: the stream is trimmed (XTRIM MINID) as gate-core's planTrim decides — by age
 * and/or length — and each Application whose oldest records go keeps a trim base (count + hash of its last trimmed
 * record, signed when the gate signs) so `--verify-chain` still verifies the retained records. `exportAuditRecords`
 * streams records out (JSONL) before that.
 */
import type { Redis } from 'ioredis';
import {
  nextStreamId,
  planTrim,
  streamIdLess,
  trimBaseNote,
  type AuditSigning,
  type RetentionPolicy,
  type TrimBase,
  type TrimResult,
} from '@gitops-gate/gate-core';
import { auditKeys } from './audit-trail.js';

const PAGE = 1000;

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
  const exported = policy.requireExport ? ((await redis.get(keys.exported)) ?? '0-0') : undefined;
  const bases = new Map<string, TrimBase>();
  for (const [app, json] of Object.entries(await redis.hgetall(keys.base))) bases.set(app, JSON.parse(json) as TrimBase);
  const plan = planTrim({ length, policy, now, exported, bases });
  let start = '-';
  scan: for (;;) {
    const page = await redis.xrange(keys.stream, start, '+', 'COUNT', PAGE);
    for (const [id, fields] of page) {
      start = `(${id}`;
      if (!plan.offer(id, fields[fields.indexOf('record') + 1])) break scan;
    }
    if (page.length < PAGE) break;
  }
  const result = plan.result();
  if (!result.lastTrimmed) return { trimmed: 0, apps: 0, heldForExport: result.heldForExport };
  const tx = redis.multi();
  for (const [app, base] of result.bases) {
    const note = signing ? trimBaseNote(signing, app, base) : undefined;
    tx.hset(keys.base, app, JSON.stringify({ ...base, ...(note ? { note } : {}) }));
  }
  if (result.droppedIds.length > 0) tx.del(...result.droppedIds.map(keys.id));
  tx.xtrim(keys.stream, 'MINID', nextStreamId(result.lastTrimmed));
  await tx.exec();
  return { trimmed: result.taken, apps: result.bases.size, heldForExport: result.heldForExport };
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
