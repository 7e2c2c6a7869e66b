/**
 * Audit trail retention, decided: which of the oldest records go (by age and/or count, never past the export mark
 * when export is required) and the trim base each Application's chain keeps (count + hash of its last trimmed record),
 * so the retained records still verify. gate-store's trimAuditTrail reads the stream into a plan and writes its result.
 */
import type { DecisionRecord, TrimBase } from './audit.js';

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
export const TRIM_BATCH = 10_000;

/** Stream ids (`<ms>-<seq>`) in order. */
export function streamIdLess(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am < bm || (am === bm && as < bs);
}

/** The smallest stream id after `id`. */
export function nextStreamId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}

export interface TrimPlan {
  /** Considers the next record, oldest first; false: stop here, neither this record nor any later one goes. */
  offer(id: string, json: string | undefined): boolean;
  result(): {
    /** Stream id of the newest record that goes (undefined: none). */
    lastTrimmed?: string;
    taken: number;
    heldForExport: boolean;
    /** The new trim base of each Application whose records go. */
    bases: Map<string, TrimBase>;
    /** Decision ids no longer to be answered by `has`: a previous base's kept id, now superseded. */
    droppedIds: string[];
  };
}

export function planTrim(opts: {
  /** Records in the stream now. */
  length: number;
  policy: RetentionPolicy;
  now: Date;
  /** The export mark (stream id; '0-0' when nothing was exported) when the policy requires export, else undefined. */
  exported: string | undefined;
  /** The current trim bases by Application. */
  bases: Map<string, TrimBase>;
}): TrimPlan {
  const { policy, exported } = opts;
  const overCount = policy.maxRecords > 0 ? Math.max(0, opts.length - policy.maxRecords) : 0;
  const ageCut = policy.maxAgeSeconds > 0 ? `${opts.now.getTime() - policy.maxAgeSeconds * 1000}-0` : undefined;
  const changed = new Map<string, TrimBase>();
  const dropIds: string[] = [];
  let lastTrimmed: string | undefined;
  let taken = 0;
  let heldForExport = false;
  return {
    offer(id, json) {
      const due = taken < overCount || (ageCut !== undefined && streamIdLess(id, ageCut));
      if (!due || taken >= TRIM_BATCH) return false;
      if (exported !== undefined && !streamIdLess(id, nextStreamId(exported))) {
        heldForExport = true;
        return false;
      }
      const rec = JSON.parse(json ?? '{}') as DecisionRecord;
      const prior = changed.get(rec.app) ?? opts.bases.get(rec.app);
      // The previous base's kept id is no longer the newest trimmed decision of this Application: let it go.
      if (prior?.lastId) dropIds.push(prior.lastId);
      changed.set(rec.app, { size: (prior?.size ?? 0) + 1, hash: rec.hash, lastId: rec.id });
      lastTrimmed = id;
      taken += 1;
      return true;
    },
    result() {
      const keep = new Set([...changed.values()].map((b) => b.lastId));
      return {
        ...(lastTrimmed ? { lastTrimmed } : {}),
        taken,
        heldForExport,
        bases: changed,
        droppedIds: dropIds.filter((id) => !keep.has(id)),
      };
    },
  };
}
