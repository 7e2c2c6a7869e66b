/**
 * GatePolicy (namespaced) and ClusterGatePolicy (cluster-scoped) objects, gitops-gate.io/v1alpha1, watched through
 * @kubernetes/client-node's informers (list + watch, relist when the watch expires). A change takes effect without a
 * restart. What is in force, per object:
 * - valid: its current generation (status Ready=True);
 * - invalid, but an earlier generation was a valid Enforce policy: that last valid generation stays in force (fail
 *   closed: breaking a policy must not open what it guarded) and the verifiers get that same object (Ready=False);
 * - invalid and never valid in this process (as Enforce): a "broken" live policy that refuses every Application it
 *   would select (`refuse-invalid-policy`); an invalid Audit policy is simply not applied (Ready=False).
 * The objects in force are published for the verifiers (which have no Kubernetes access) through `onChange`.
 *
 * client-node's ListWatch swallows list errors (it emits `error` and stops; callers that restart it on a timer relist
 * about once a second forever). So each kind is LISTed before its informer starts and again after every error: the
 * cause (CRD not installed, RBAC, API unreachable) is logged and reported by health(), and retries back off
 * exponentially. Until every kind has listed once, live() throws (POLICIES_NOT_SYNCED) so verdicts wait.
 */
import { CustomObjectsApi, makeInformer, type Informer, type KubeConfig, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '@gitops-gate/telemetry';
import {
  describeWatchFailure,
  PolicyWatchError,
  selectedBy,
  type Application,
  type PolicySet,
  type PolicyWatcher,
} from '@gitops-gate/gate-core';
import {
  evaluatePolicyObjects,
  POLICY_GROUP,
  POLICY_KINDS,
  POLICY_VERSION,
  revisionOf,
  toLivePolicy,
  type KindInfo,
  type PolicyMemory,
  type PolicyObject,
} from '@gitops-gate/policy';
import { createPolicyStatusWriter } from './policy-status.js';

interface KindState {
  info: KindInfo;
  informer: Informer<PolicyObject> & ObjectCache<PolicyObject>;
  list: () => Promise<unknown>;
  synced: boolean;
  /** The CRD is not installed: no objects of this kind exist. */
  missing: boolean;
  problem?: string;
  delayMs: number;
  failedSinceStart: boolean;
  timer?: NodeJS.Timeout;
}

/** One list/watch per policy kind (GatePolicy, ClusterGatePolicy), each with its own retry state. */
function createKindStates(kc: KubeConfig, api: CustomObjectsApi, initialDelayMs: number): KindState[] {
  return POLICY_KINDS.map((info) => {
    const list = () => api.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: info.plural });
    return {
      info,
      list,
      informer: makeInformer<PolicyObject>(kc, `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${info.plural}`, list as never),
      synced: false,
      missing: false,
      delayMs: initialDelayMs,
      failedSinceStart: false,
    };
  });
}

/** The opted-in Applications for status.selectedApplications; a failed list only leaves that field out. */
async function listApplications(list: (() => Promise<Application[]>) | undefined, logger: Logger): Promise<Application[] | undefined> {
  if (!list) return undefined;
  try {
    return await list();
  } catch (err) {
    logger.warn({ err }, 'applications not listed for policy status');
    return undefined;
  }
}

export function createPolicyWatcher(opts: {
  kc: KubeConfig;
  logger: Logger;
  onChange: (set: PolicySet) => Promise<void> | void;
  now?: () => Date;
  /** Opted-in Applications, for status.selectedApplications (omitted: not reported). */
  applications?: () => Promise<Application[]>;
  /** Retry delays after a failed list/watch: doubling from initialMs up to maxMs. */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * The objects that were in force before this process started (the snapshot last published to Redis): an Enforce
   * policy found invalid at start-up keeps its previous valid generation instead of refusing everything it selects.
   */
  previous?: object[];
}): PolicyWatcher {
  const api = opts.kc.makeApiClient(CustomObjectsApi);
  const now = opts.now ?? (() => new Date());
  const backoff = opts.backoff ?? { initialMs: 1_000, maxMs: 60_000 };

  const kinds = createKindStates(opts.kc, api, backoff.initialMs);

  let set: PolicySet = { revision: revisionOf([], []), compiled: [], objects: [], broken: [] };
  let published = false;
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();
  /** The last valid compiled generation of each object (by uid) and the snapshot in force before this process. */
  const memory: PolicyMemory = { lastValid: new Map(), previous: new Map() };
  for (const o of (opts.previous ?? []) as PolicyObject[]) if (o.metadata?.uid) memory.previous.set(o.metadata.uid, o);
  const statusWriter = createPolicyStatusWriter({ api, logger: opts.logger, now });

  async function recompute(): Promise<void> {
    if (!kinds.every((k) => k.synced)) return;
    const { inForce, broken, outcomes, seen } = await evaluatePolicyObjects(
      kinds.map((k) => ({ kind: k.info, objects: k.missing ? [] : k.informer.list() })),
      memory,
      opts.logger,
    );
    statusWriter.retain(seen);
    const revision = revisionOf(inForce, broken);
    if (revision !== set.revision || !published) {
      const next: PolicySet = { revision, compiled: inForce.map((p) => p.compiled), objects: inForce.map((p) => p.obj), broken };
      opts.logger.info(
        { revision, policies: next.compiled.map((p) => `${p.name}@${p.generation ?? '-'}:${p.mode}`), broken: broken.map((b) => b.name) },
        'policies changed',
      );
      // Publish to the verifiers first: a re-verification the gate requests for this revision must find it in Redis.
      await opts.onChange(next);
      set = next;
      published = true;
    }
    const apps = await listApplications(opts.applications, opts.logger);
    for (const o of outcomes)
      await statusWriter.write(o.kind, o.obj, o.ok, o.reason, o.message, apps && o.live ? selectedBy(o.live, apps) : undefined);
  }

  // Events arrive faster than compiling; run recomputes one after another, each over the whole cache.
  const schedule = (): Promise<void> => {
    chain = chain.then(recompute).catch((err: unknown) => opts.logger.error({ err }, 'policy recompute failed'));
    return chain;
  };

  function fail(k: KindState, err: unknown): void {
    if (stopped) return;
    k.failedSinceStart = true;
    const failure = describeWatchFailure(k.info, err, k.synced && !k.missing);
    k.problem = failure.problem;
    if (failure.missing) {
      // A kind whose CRD is absent has no objects: decisions go on with the other kind (and default deny).
      k.missing = true;
      k.synced = true;
      void schedule();
    }
    opts.logger.error({ kind: k.info.kind, problem: k.problem, retryInMs: k.delayMs, err }, 'policy watch failed');
    clearTimeout(k.timer);
    const delay = k.delayMs;
    k.delayMs = Math.min(k.delayMs * 2, backoff.maxMs);
    k.timer = setTimeout(() => void connect(k), delay);
    k.timer.unref?.();
  }

  async function connect(k: KindState): Promise<void> {
    if (stopped) return;
    try {
      // ListWatch.start() swallows list errors: list first, so a missing CRD or RBAC shows up here with its status.
      await k.list();
    } catch (err) {
      fail(k, err);
      return;
    }
    k.failedSinceStart = false;
    k.missing = false;
    await k.informer.start();
    if (k.failedSinceStart || stopped) return;
    if (k.problem) opts.logger.info({ kind: k.info.kind }, 'policy watch recovered');
    k.problem = undefined;
    k.delayMs = backoff.initialMs;
    k.synced = true;
    await schedule();
  }

  for (const k of kinds) {
    k.informer.on('add', () => void schedule());
    k.informer.on('update', () => void schedule());
    k.informer.on('delete', () => void schedule());
    k.informer.on('error', (err: unknown) => fail(k, err));
  }

  return {
    async start() {
      await Promise.all(kinds.map((k) => connect(k)));
      await chain;
    },
    async stop() {
      stopped = true;
      for (const k of kinds) {
        clearTimeout(k.timer);
        await k.informer.stop().catch(() => undefined);
      }
    },
    current: () => set,
    live() {
      if (!published)
        throw new PolicyWatchError(
          'POLICIES_NOT_SYNCED',
          `policies not listed yet: ${
            kinds
              .map((k) => k.problem)
              .filter(Boolean)
              .join('; ') || 'starting'
          }`,
        );
      return [...set.compiled.map(toLivePolicy), ...set.broken];
    },
    health() {
      const problems = kinds.map((k) => k.problem).filter((p): p is string => p !== undefined);
      return { synced: published, ok: published && problems.length === 0, problems };
    },
    resync: () => schedule(),
  };
}
