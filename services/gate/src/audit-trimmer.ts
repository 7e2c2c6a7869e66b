import type { RetentionPolicy, TrimResult } from '@gitops-gate/gate-core';
import type { Logger } from '@gitops-gate/telemetry';

/** The one Redis command the lease needs (ioredis' `set … PX ms NX`). */
export interface LeaseRedis {
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<'OK' | null>;
}

export interface AuditTrimmerDeps {
  redis: LeaseRedis;
  prefix: string;
  retention: RetentionPolicy;
  intervalSeconds: number;
  /** Who holds the lease (the process id): only for operators reading the key. */
  holder: string;
  trim(now: Date): Promise<TrimResult>;
  logger: Logger;
  now?: () => Date;
}

/** Lease length: 80 % of the interval, so the next tick of any replica may take it; never under 100 ms. */
export const trimLeaseMs = (intervalSeconds: number): number => Math.max(intervalSeconds * 800, 100);

/**
 * Audit retention: one gate replica at a time (the first to take the lease) trims a batch per interval; the others skip
 * that tick. Retention off (no age and no count limit) never touches Redis.
 */
export interface AuditTrimmer {
  runOnce: () => Promise<void>;
  /** Trims now and then every interval (errors logged). */
  start: () => void;
  stop: () => void;
}

export function createAuditTrimmer(deps: AuditTrimmerDeps): AuditTrimmer {
  let timer: NodeJS.Timeout | undefined;
  const runOnce = async (): Promise<void> => {
    if (deps.retention.maxAgeSeconds === 0 && deps.retention.maxRecords === 0) return;
    const leased = await deps.redis.set(`${deps.prefix}:audit-trim-lease`, deps.holder, 'PX', trimLeaseMs(deps.intervalSeconds), 'NX');
    if (leased !== 'OK') return;
    const result = await deps.trim(deps.now?.() ?? new Date());
    if (result.trimmed > 0) deps.logger.info(result, 'audit records trimmed');
    if (result.heldForExport) deps.logger.warn('audit records due for retention kept: not exported yet (gitops-gate audit export --mark)');
  };
  const logged = () => void runOnce().catch((err: unknown) => deps.logger.warn({ err }, 'audit trim failed'));
  return {
    runOnce,
    start() {
      timer = setInterval(logged, deps.intervalSeconds * 1000);
      timer.unref();
      logged();
    },
    stop: () => clearInterval(timer),
  };
}
