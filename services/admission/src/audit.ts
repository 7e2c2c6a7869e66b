/**
 * Admission audit trail: a Redis stream `<prefix>:admission-audit` (trimmed to ~100,000 entries) and the log.
 * Every deny and every break-glass admission is one record; allows are aggregated per namespace and written as one
 * summary record per flush interval (60 s), so a busy cluster adds at most one allow record per minute.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '@gitops-gate/telemetry';
import type { AdmissionDecision } from './decide.js';
import type { ReviewedWorkload } from './review.js';

export const ADMISSION_AUDIT_MAXLEN = 100_000;

export interface AdmissionAudit {
  record(w: ReviewedWorkload, d: AdmissionDecision | { allowed: true; exempt: true }): void;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function createAdmissionAudit(redis: Redis, prefix: string, logger: Logger, flushMs = 60_000): AdmissionAudit {
  const key = `${prefix}:admission-audit`;
  let allows = new Map<string, number>();
  const write = (rec: Record<string, unknown>) => {
    logger.info({ admission: rec }, 'admission audit record');
    // Never awaited on the hot path; a lost write is logged (the log line above carries the same record).
    redis
      .xadd(key, 'MAXLEN', '~', String(ADMISSION_AUDIT_MAXLEN), '*', 'record', JSON.stringify(rec))
      .catch((err: unknown) => logger.error({ err }, 'admission audit write failed'));
  };
  const flush = (): Promise<void> => {
    if (allows.size === 0) return Promise.resolve();
    const counts = Object.fromEntries(allows);
    allows = new Map();
    write({ at: new Date().toISOString(), outcome: 'allow-summary', counts });
    return Promise.resolve();
  };
  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();
  return {
    record(w, d) {
      // Allows (nearly every review) only bump a counter: nothing else is built or written on the hot path.
      if (!('exempt' in d) && d.allowed) {
        const k = `${w.namespace} ${d.warnings.length > 0 ? 'audit-warn' : 'allow'}`;
        allows.set(k, (allows.get(k) ?? 0) + 1);
        return;
      }
      const base = {
        at: new Date().toISOString(),
        uid: w.uid,
        namespace: w.namespace,
        kind: w.kind,
        name: w.name,
        user: w.user,
        images: w.images.map((i) => i.image),
      };
      if ('exempt' in d) return write({ ...base, outcome: 'exempt' });
      write({ ...base, outcome: 'deny', mode: d.mode, problems: d.problems });
    },
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
