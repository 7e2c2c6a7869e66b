// What every verify job handler shares: the verifier's dependencies, its clock and its metrics (one set per
// processor, registered once).
import { BaseError } from '@gitops-gate/contracts/errors';
import type { Queue } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { FollowedRepo } from '@gitops-gate/contracts';
import type { GitMirror } from '@gitops-gate/git';
import type { Logger } from '@gitops-gate/telemetry';
import type { CommitVerifierFn, ImageCheckerFn } from './checks.js';

export interface VerifierDeps {
  mirror: GitMirror;
  verifyCommit: CommitVerifierFn;
  /** Image signature/provenance verification; without it image jobs get a rejected verdict. */
  verifyImage?: ImageCheckerFn;
  gateQueue: Queue;
  logger: Logger;
  registry: Registry;
  now?: () => Date;
  /** How long completed gate jobs are kept (COMPLETED_JOB_RETENTION_SECONDS; default an hour). */
  completedJobSeconds?: number;
  /** How much history a verified commit's verdict carries for the gate's ancestry check (default 256; 0 = none). */
  historyDepth?: number;
  /**
   * The gate's followed repository for a repository URL (null: not followed; undefined: the gate has not published
   * the set yet). The verifier fetches only followed repositories, from their `fetchUrl`, never the job's cloneUrl.
   */
  followed: (repoUrl: string) => Promise<FollowedRepo | null | undefined>;
}

/** The set is not published yet (no gate has run): transient, so the job waits for it with backoff. */
export class FollowedSetMissingError extends BaseError<'FOLLOWED_SET_MISSING'> {
  readonly transient = true;
  constructor() {
    super('FOLLOWED_SET_MISSING', 'the gate has not published the followed repositories yet');
  }
}

export interface VerifierMetrics {
  verdicts: Counter<'kind' | 'method' | 'outcome'>;
  seconds: Histogram<'method'>;
  notFollowed: Counter;
}

export interface VerifyContext {
  deps: VerifierDeps;
  now: () => Date;
  metrics: VerifierMetrics;
}

export function createVerifyContext(deps: VerifierDeps): VerifyContext {
  return { deps, now: deps.now ?? (() => new Date()), metrics: createVerifierMetrics(deps.registry) };
}

function createVerifierMetrics(registry: Registry): VerifierMetrics {
  return {
    verdicts: new Counter({
      name: 'gitops_gate_verdicts_total',
      help: 'Verification verdicts by kind, method and outcome',
      labelNames: ['kind', 'method', 'outcome'] as const,
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'gitops_gate_verification_seconds',
      help: 'Time to verify one job (fetch + signature), by method',
      labelNames: ['method'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    notFollowed: new Counter({
      name: 'gitops_gate_verify_not_followed_total',
      help: 'Commit jobs dropped without a fetch because no opted-in Application follows the repository',
      registers: [registry],
    }),
  };
}
