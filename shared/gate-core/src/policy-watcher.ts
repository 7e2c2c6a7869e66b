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
import { createHash } from 'node:crypto';
import { CustomObjectsApi, makeInformer, PatchStrategy, setHeaderOptions, type Informer, type KubeConfig, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import { compilePolicy, policiesFor, type CompiledPolicy } from '@gitops-gate/commit-verify';
import { normalizeRepoUrl, policySelectorSchema, type PolicySelector } from '@gitops-gate/contracts';
import type { Logger } from '@gitops-gate/telemetry';
import { BRANCH_ANNOTATION, appKey, type Application } from './applications.js';
import { policySelects, type LivePolicy } from './policies.js';

export const POLICY_GROUP = 'gitops-gate.io';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_PLURAL = 'gatepolicies';
export const CLUSTER_POLICY_PLURAL = 'clustergatepolicies';

interface KindInfo {
  kind: 'GatePolicy' | 'ClusterGatePolicy';
  plural: string;
  scope: 'Namespaced' | 'Cluster';
}
export const POLICY_KINDS: readonly KindInfo[] = [
  { kind: 'GatePolicy', plural: POLICY_PLURAL, scope: 'Namespaced' },
  { kind: 'ClusterGatePolicy', plural: CLUSTER_POLICY_PLURAL, scope: 'Cluster' },
];

type PolicyObject = KubernetesObject & { spec?: unknown; status?: PolicyStatus };

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

interface PolicyStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** Which opted-in Applications the policy in force selects (count, and the first few by name). */
  selectedApplications?: { count: number; names: string[] };
}

export interface PolicySet {
  revision: string;
  compiled: CompiledPolicy[];
  /** The objects in force as the API returned them (what the verifiers compile): current or last valid generation. */
  objects: object[];
  /** Never-valid Enforce policies: they refuse what they would select. */
  broken: LivePolicy[];
}

export interface PolicyWatchHealth {
  /** Every kind listed at least once (decisions can use the live set). */
  synced: boolean;
  /** Nothing wrong right now. */
  ok: boolean;
  /** One line per kind that cannot be listed or watched, naming the cause. */
  problems: string[];
}

export interface PolicyWatcher {
  /** Lists and starts watching; never throws: failures are logged, reported by health() and retried with backoff. */
  start(): Promise<void>;
  stop(): Promise<void>;
  current(): PolicySet;
  /** The policies in force; throws POLICIES_NOT_SYNCED until every kind has been listed once. */
  live(): LivePolicy[];
  health(): PolicyWatchHealth;
  /** Recomputes now (e.g. Applications changed, for status.selectedApplications); writes only what changed. */
  resync(): Promise<void>;
}

export class PolicyWatchError extends Error {
  constructor(
    readonly code: 'POLICIES_NOT_SYNCED',
    message: string,
  ) {
    super(message);
    this.name = 'PolicyWatchError';
  }
}

/** How many Application names status.selectedApplications lists (the count is always complete). */
const SELECTED_NAMES_MAX = 10;

export function toLivePolicy(p: CompiledPolicy): LivePolicy {
  return {
    name: p.name,
    scope: p.scope,
    namespace: p.namespace,
    uid: p.uid,
    generation: p.generation,
    mode: p.mode,
    selector: p.selector,
    governs: (repoUrl, branch) => policiesFor([p], repoUrl, branch, normalizeRepoUrl).length > 0,
  };
}

/**
 * A never-valid object as a live policy that refuses: its raw selector, repository and branches when they are readable
 * (so it refuses only what it would have selected), else every Application in its scope.
 */
export function brokenLivePolicy(obj: PolicyObject, kind: KindInfo, problem: string): LivePolicy {
  const spec = (typeof obj.spec === 'object' && obj.spec !== null ? obj.spec : {}) as Record<string, unknown>;
  const selector = policySelectorSchema.safeParse(spec.selector ?? {});
  const repository = typeof spec.repository === 'string' ? spec.repository : undefined;
  const branches = Array.isArray(spec.branches) && spec.branches.length > 0 && spec.branches.every((b) => typeof b === 'string') ? (spec.branches as string[]) : undefined;
  const namespace = kind.scope === 'Namespaced' ? obj.metadata?.namespace : undefined;
  const rules = repository && branches ? ({ repository, branches } as CompiledPolicy) : undefined;
  return {
    name: namespace ? `${namespace}/${obj.metadata?.name}` : (obj.metadata?.name ?? ''),
    scope: kind.scope,
    namespace,
    uid: obj.metadata?.uid,
    generation: obj.metadata?.generation,
    mode: spec.mode === 'Audit' ? 'Audit' : 'Enforce',
    selector: selector.success ? (selector.data as PolicySelector) : {},
    governs: (repoUrl, branch) => (rules ? policiesFor([rules], repoUrl, branch, normalizeRepoUrl).length > 0 : true),
    broken: problem,
  };
}

function revisionOf(inForce: { kind: string; obj: PolicyObject }[], broken: LivePolicy[]): string {
  const ids = [
    ...inForce.map(({ kind, obj }) => `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}/${obj.metadata?.uid ?? ''}@${obj.metadata?.generation ?? 0}`),
    ...broken.map((b) => `broken:${b.scope}/${b.namespace ?? ''}/${b.name}/${b.uid ?? ''}@${b.generation ?? 0}`),
  ].sort();
  return createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 16);
}

function httpStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown } | undefined;
  for (const v of [e?.code, e?.statusCode, e?.status]) if (typeof v === 'number') return v;
  return undefined;
}

/** Opted-in Applications (by name) that a policy in force selects, for its status. */
function selectedBy(p: LivePolicy, apps: Application[]): string[] {
  return apps
    .filter((app) => {
      const branch = app.metadata.annotations?.[BRANCH_ANNOTATION];
      if (branch === undefined || !policySelects(p, app)) return false;
      const sources = Array.isArray(app.spec?.sources) && app.spec.sources.length > 0 ? app.spec.sources : [app.spec?.source];
      return sources.some((s) => typeof s?.repoURL === 'string' && p.governs(normalizeRepoUrl(s.repoURL), branch));
    })
    .map(appKey)
    .sort();
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
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const now = opts.now ?? (() => new Date());
  const backoff = opts.backoff ?? { initialMs: 1_000, maxMs: 60_000 };

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

  const kinds: KindState[] = POLICY_KINDS.map((info) => {
    const list = () => api.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: info.plural });
    return {
      info,
      list,
      informer: makeInformer<PolicyObject>(opts.kc, `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${info.plural}`, list as never),
      synced: false,
      missing: false,
      delayMs: backoff.initialMs,
      failedSinceStart: false,
    };
  });

  let set: PolicySet = { revision: revisionOf([], []), compiled: [], objects: [], broken: [] };
  let published = false;
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();
  /** The last valid compiled generation of each object (by uid), kept in force while the object is invalid. */
  const lastValid = new Map<string, { compiled: CompiledPolicy; obj: PolicyObject }>();
  const previous = new Map<string, PolicyObject>();
  for (const o of (opts.previous ?? []) as PolicyObject[]) if (o.metadata?.uid) previous.set(o.metadata.uid, o);
  /** The status last written per object, so an API server that prunes or lags cannot make us write in a loop. */
  const lastWritten = new Map<string, string>();

  const idOf = (kind: KindInfo, obj: PolicyObject) => obj.metadata?.uid ?? `${kind.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
  const displayOf = (kind: KindInfo, obj: PolicyObject) =>
    `${kind.kind} ${kind.scope === 'Namespaced' ? `${obj.metadata?.namespace}/` : ''}${obj.metadata?.name}`;

  async function writeStatus(kind: KindInfo, obj: PolicyObject, ok: boolean, reason: string, message: string, selected: string[] | undefined): Promise<void> {
    const generation = obj.metadata?.generation;
    const prev = obj.status?.conditions?.find((c) => c.type === 'Ready');
    const status = ok ? 'True' : 'False';
    const selectedApplications = selected ? { count: selected.length, names: selected.slice(0, SELECTED_NAMES_MAX) } : undefined;
    const wanted = JSON.stringify({ generation, status, reason, message, selectedApplications });
    const id = idOf(kind, obj);
    // Writing the same status again would trigger another watch event and another write: only write changes.
    const same =
      obj.status?.observedGeneration === generation &&
      prev?.status === status &&
      prev.reason === reason &&
      prev.message === message &&
      (selectedApplications === undefined || JSON.stringify(obj.status?.selectedApplications) === JSON.stringify(selectedApplications));
    if (same || lastWritten.get(id) === wanted) return;
    const condition: Condition = {
      type: 'Ready',
      status,
      reason,
      message,
      observedGeneration: generation,
      lastTransitionTime: prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now().toISOString(),
    };
    const body = { status: { observedGeneration: generation, conditions: [condition], ...(selectedApplications ? { selectedApplications } : {}) } };
    const name = obj.metadata?.name ?? '';
    try {
      if (kind.scope === 'Namespaced') {
        await api.patchNamespacedCustomObjectStatus(
          { group: POLICY_GROUP, version: POLICY_VERSION, plural: kind.plural, namespace: obj.metadata?.namespace ?? 'default', name, body },
          mergePatch,
        );
      } else {
        await api.patchClusterCustomObjectStatus({ group: POLICY_GROUP, version: POLICY_VERSION, plural: kind.plural, name, body }, mergePatch);
      }
      lastWritten.set(id, wanted);
    } catch (err) {
      opts.logger.warn({ policy: displayOf(kind, obj), err }, 'policy status not written');
    }
  }

  /** The same object's (same kind and uid) older generation from the previous snapshot, if it still compiles. */
  async function fromPrevious(kind: KindInfo, obj: PolicyObject): Promise<{ compiled: CompiledPolicy; obj: PolicyObject } | undefined> {
    const prev = obj.metadata?.uid ? previous.get(obj.metadata.uid) : undefined;
    if (!prev || prev.kind !== kind.kind || (prev.metadata?.generation ?? 0) >= (obj.metadata?.generation ?? 0)) return undefined;
    try {
      const kept = { compiled: await compilePolicy(prev, displayOf(kind, prev), 'object'), obj: prev };
      lastValid.set(idOf(kind, obj), kept);
      return kept;
    } catch {
      return undefined;
    }
  }

  async function recompute(): Promise<void> {
    if (!kinds.every((k) => k.synced)) return;
    const inForce: { kind: string; obj: PolicyObject; compiled: CompiledPolicy }[] = [];
    const broken: LivePolicy[] = [];
    const statuses: { kind: KindInfo; obj: PolicyObject; ok: boolean; reason: string; message: string; live?: LivePolicy }[] = [];
    const seen = new Set<string>();
    for (const k of kinds) {
      for (const obj of k.missing ? [] : k.informer.list()) {
        const where = displayOf(k.info, obj);
        const id = idOf(k.info, obj);
        seen.add(id);
        try {
          // Status writes and resyncs come back as events: recompile only what changed (a new generation).
          const cached = lastValid.get(id);
          const generation = obj.metadata?.generation;
          const reuse = cached && generation !== undefined && cached.compiled.generation === generation ? cached : undefined;
          const compiled = reuse?.compiled ?? (await compilePolicy(obj, where, 'object'));
          const { status: _s, ...clean } = obj;
          lastValid.set(id, { compiled, obj: clean });
          inForce.push({ kind: k.info.kind, obj: clean, compiled });
          statuses.push({ kind: k.info, obj, ok: true, reason: 'Valid', message: 'policy is valid and in force', live: toLivePolicy(compiled) });
        } catch (err) {
          const problem = (err as Error).message;
          const kept = lastValid.get(id) ?? (await fromPrevious(k.info, obj));
          if (kept && kept.compiled.mode === 'Enforce') {
            inForce.push({ kind: k.info.kind, obj: kept.obj, compiled: kept.compiled });
            const message = `${problem}; generation ${kept.compiled.generation ?? '?'} (the last valid one) stays in force`;
            statuses.push({ kind: k.info, obj, ok: false, reason: 'InvalidLastValidInForce', message, live: toLivePolicy(kept.compiled) });
            opts.logger.warn({ policy: where, err }, 'policy invalid, last valid generation kept');
          } else {
            const b = brokenLivePolicy(obj, k.info, problem);
            if (b.mode === 'Enforce') {
              broken.push(b);
              statuses.push({ kind: k.info, obj, ok: false, reason: 'InvalidRefusing', message: `${problem}; never valid: refusing the Applications it selects`, live: b });
            } else {
              statuses.push({ kind: k.info, obj, ok: false, reason: 'Invalid', message: `${problem}; not applied` });
            }
            opts.logger.warn({ policy: where, err }, 'policy invalid, not applied');
          }
        }
      }
    }
    for (const id of lastValid.keys()) if (!seen.has(id)) lastValid.delete(id);
    for (const id of lastWritten.keys()) if (!seen.has(id)) lastWritten.delete(id);
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
    let apps: Application[] | undefined;
    if (opts.applications) {
      try {
        apps = await opts.applications();
      } catch (err) {
        opts.logger.warn({ err }, 'applications not listed for policy status');
      }
    }
    for (const s of statuses) await writeStatus(s.kind, s.obj, s.ok, s.reason, s.message, apps && s.live ? selectedBy(s.live, apps) : undefined);
  }

  // Events arrive faster than compiling; run recomputes one after another, each over the whole cache.
  const schedule = (): Promise<void> => {
    chain = chain.then(recompute).catch((err: unknown) => opts.logger.error({ err }, 'policy recompute failed'));
    return chain;
  };

  function fail(k: KindState, err: unknown): void {
    if (stopped) return;
    k.failedSinceStart = true;
    const status = httpStatusOf(err);
    const plural = k.info.plural;
    if (status === 404 && k.synced && !k.missing) {
      // Listed before: a 404 now is an API server restarting before it serves the CRD, or the CRD being re-applied.
      // Dropping the kind would let weaker policies (or none) decide what its policies enforce: keep the cached objects
      // in force and only report it. Deleting the CRD deletes its objects, which arrive as delete events first.
      k.problem = `${k.info.kind} list answered 404 after it was listed: keeping the ${k.info.kind} objects in force until it answers again`;
    } else if (status === 404) {
      k.problem = `${k.info.kind} CRD not installed (404 listing ${plural}.${POLICY_GROUP}): no ${k.info.kind} objects are in force`;
      // A kind whose CRD is absent has no objects: decisions go on with the other kind (and default deny).
      k.missing = true;
      k.synced = true;
      void schedule();
    } else if (status === 403) {
      k.problem = `forbidden to list/watch ${plural}.${POLICY_GROUP} cluster-wide (403): the gate needs the ClusterRole of deploy/base/cluster bound with a ClusterRoleBinding`;
    } else {
      k.problem = `cannot list/watch ${plural}.${POLICY_GROUP}${status ? ` (${status})` : ''}: ${(err as Error | undefined)?.message ?? String(err)}`;
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
      if (!published) throw new PolicyWatchError('POLICIES_NOT_SYNCED', `policies not listed yet: ${kinds.map((k) => k.problem).filter(Boolean).join('; ') || 'starting'}`);
      return [...set.compiled.map(toLivePolicy), ...set.broken];
    },
    health() {
      const problems = kinds.map((k) => k.problem).filter((p): p is string => p !== undefined);
      return { synced: published, ok: published && problems.length === 0, problems };
    },
    resync: () => schedule(),
  };
}
