/**
 * The per-Application lock the gate decides under: of several gate replicas exactly one decides and writes an
 * Application at a time. The Redis implementation is @gitops-gate/gate-store's createRedisLock.
 */
import { BaseError } from '@gitops-gate/contracts/errors';

export interface KeyedLock {
  /** Runs fn while holding the lock for key; waits up to waitMs for it. */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

export class LockTimeoutError extends BaseError<'LOCK_TIMEOUT'> {
  constructor(message: string) {
    super('LOCK_TIMEOUT', message);
  }
}
