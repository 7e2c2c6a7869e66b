import type { AppOutcome, Gate, PolicySet, PolicyWatcher } from '@gitops-gate/gate-core';
import type { Logger } from '@gitops-gate/telemetry';

export interface PendingReevaluation {
  /** Sets the gate (the watcher's first change comes before it exists) and runs one pass: policies may have changed while no gate ran. */
  attach(gate: Pick<Gate, 'reevaluatePending'>): void;
  /** Queues one more pass after the current one (nothing before a gate is attached). */
  trigger(): void;
  /** The end of the passes queued so far (tests, shutdown). */
  settled(): Promise<unknown>;
}

/**
 * Commits waiting for images are decided again whenever the live policies change: one pass at a time, chained off the
 * watcher's own chain so a slow pass never delays publishing the snapshot. Outcomes are reported like any decision.
 */
export function createPendingReevaluation(onOutcomes: (outcomes: AppOutcome[]) => Promise<void>, logger: Logger): PendingReevaluation {
  let gate: Pick<Gate, 'reevaluatePending'> | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const pass = () => {
    const g = gate;
    if (!g) return;
    chain = chain
      .then(() => g.reevaluatePending())
      .then(onOutcomes)
      .catch((err: unknown) => logger.warn({ err }, 'pending image waits not re-evaluated'));
  };
  return {
    attach(g) {
      gate = g;
      pass();
    },
    trigger: pass,
    settled: () => chain,
  };
}

export interface PolicyWatchDeps {
  /** What was in force before this start: an Enforce policy that is invalid now keeps its earlier valid generation. */
  readPrevious(): Promise<object[]>;
  /** Verifiers have no Kubernetes access: the policies in force reach them through Redis. */
  publish(set: PolicySet): Promise<void>;
  createWatcher(opts: { previous: object[]; onChange: (set: PolicySet) => Promise<void> }): PolicyWatcher;
  reevaluation: Pick<PendingReevaluation, 'trigger'>;
  /** How often status.selectedApplications is refreshed (Applications come and go without a policy event). */
  resyncMs: number;
  logger: Logger;
}

/**
 * Starts the GatePolicy watch. Never throws: an unreadable earlier snapshot starts from nothing; a missing CRD, RBAC or
 * an unreachable API server is logged, reported on /readyz and retried by the watcher, and until policies are listed
 * verdicts wait (their jobs retry) rather than being decided without them.
 */
export async function startPolicyWatch(deps: PolicyWatchDeps): Promise<{ watcher: PolicyWatcher; stop(): void }> {
  let previous: object[] = [];
  try {
    previous = await deps.readPrevious();
  } catch (err) {
    deps.logger.warn({ err }, 'previous policy snapshot unreadable');
  }
  const watcher = deps.createWatcher({
    previous,
    onChange: async (set) => {
      await deps.publish(set);
      deps.reevaluation.trigger();
    },
  });
  await watcher.start();
  const timer = setInterval(() => void watcher.resync(), deps.resyncMs);
  timer.unref();
  return { watcher, stop: () => clearInterval(timer) };
}

/** /readyz: Redis answers, every policy kind can be watched, and (when watching) policies were listed once. */
export function gateReadiness(
  ping: () => Promise<string>,
  watcher: Pick<PolicyWatcher, 'health'> | undefined,
): () => Promise<{ ok: boolean; problems: string[] }> {
  return async () => {
    const problems = [...((await ping().catch(() => '')) === 'PONG' ? [] : ['redis unreachable']), ...(watcher?.health().problems ?? [])];
    if (watcher && !watcher.health().synced && problems.length === 0) problems.push('policies not listed yet');
    return { ok: problems.length === 0, problems };
  };
}
