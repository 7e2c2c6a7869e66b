/**
 * Which policies are in force, from the objects the API server holds (pure: no client, no clock). Per object:
 * - valid: its current generation;
 * - invalid, but an earlier generation was a valid Enforce policy (in this process, or in the snapshot last
 *   published before it started): that last valid generation stays in force — breaking a policy must not open what
 *   it guarded;
 * - invalid and never valid as Enforce: a "broken" live policy that refuses what it would select; an invalid Audit
 *   policy is not applied.
 */
import { createHash } from 'node:crypto';
import { normalizeRepoUrl, policySelectorSchema } from '@gitops-gate/contracts';
import { policiesFor } from './commit-evaluation.js';
import { compilePolicy, type CompiledPolicy } from './policy.js';
import type { LivePolicy } from './selection.js';
import type { PolicyStatus } from './status.js';

/**
 * The one logger call this module makes. A structural type, so a pino logger fits without this core package
 * depending on the telemetry adapter.
 */
export interface PolicyLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
}

export const POLICY_GROUP = 'gitops-gate.io';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_PLURAL = 'gatepolicies';
export const CLUSTER_POLICY_PLURAL = 'clustergatepolicies';

export interface KindInfo {
  kind: 'GatePolicy' | 'ClusterGatePolicy';
  plural: string;
  scope: 'Namespaced' | 'Cluster';
}
export const POLICY_KINDS: readonly KindInfo[] = [
  { kind: 'GatePolicy', plural: POLICY_PLURAL, scope: 'Namespaced' },
  { kind: 'ClusterGatePolicy', plural: CLUSTER_POLICY_PLURAL, scope: 'Cluster' },
];

/** A GatePolicy or ClusterGatePolicy as the API server returns it (structurally a KubernetesObject). */
export interface PolicyObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; generation?: number; [key: string]: unknown };
  spec?: unknown;
  status?: PolicyStatus;
}

/** What became of one object: in force (current or last valid generation), refusing, or not applied. */
export interface PolicyObjectOutcome {
  kind: KindInfo;
  obj: PolicyObject;
  ok: boolean;
  reason: 'Valid' | 'InvalidLastValidInForce' | 'InvalidRefusing' | 'Invalid';
  message: string;
  live?: LivePolicy;
}

export interface PolicyObjectsEvaluation {
  inForce: { kind: string; obj: PolicyObject; compiled: CompiledPolicy }[];
  broken: LivePolicy[];
  outcomes: PolicyObjectOutcome[];
  /** Ids (uid, or kind/namespace/name) of every object seen, for forgetting the rest. */
  seen: Set<string>;
}

/** What the evaluation remembers between runs: the last valid generation of each object, and the previous snapshot. */
export interface PolicyMemory {
  lastValid: Map<string, { compiled: CompiledPolicy; obj: PolicyObject }>;
  previous: Map<string, PolicyObject>;
}

export const policyIdOf = (kind: KindInfo, obj: PolicyObject): string =>
  obj.metadata?.uid ?? `${kind.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
export const policyDisplayOf = (kind: KindInfo, obj: PolicyObject): string =>
  `${kind.kind} ${kind.scope === 'Namespaced' ? `${obj.metadata?.namespace}/` : ''}${obj.metadata?.name}`;

/** The same object's (same kind and uid) older generation from the previous snapshot, if it still compiles. */
async function fromPrevious(
  memory: PolicyMemory,
  kind: KindInfo,
  obj: PolicyObject,
): Promise<{ compiled: CompiledPolicy; obj: PolicyObject } | undefined> {
  const prev = obj.metadata?.uid ? memory.previous.get(obj.metadata.uid) : undefined;
  if (!prev || prev.kind !== kind.kind || (prev.metadata?.generation ?? 0) >= (obj.metadata?.generation ?? 0)) return undefined;
  try {
    const kept = { compiled: await compilePolicy(prev, policyDisplayOf(kind, prev), 'object'), obj: prev };
    memory.lastValid.set(policyIdOf(kind, obj), kept);
    return kept;
  } catch {
    return undefined;
  }
}

/** Compiles every listed object (reusing an unchanged generation) and decides what is in force; updates `memory`. */
export async function evaluatePolicyObjects(
  listed: { kind: KindInfo; objects: readonly PolicyObject[] }[],
  memory: PolicyMemory,
  logger: PolicyLogger,
): Promise<PolicyObjectsEvaluation> {
  const inForce: PolicyObjectsEvaluation['inForce'] = [];
  const broken: LivePolicy[] = [];
  const outcomes: PolicyObjectOutcome[] = [];
  const seen = new Set<string>();
  for (const { kind, objects } of listed) {
    for (const obj of objects) {
      const where = policyDisplayOf(kind, obj);
      const id = policyIdOf(kind, obj);
      seen.add(id);
      try {
        // Status writes and resyncs come back as events: recompile only what changed (a new generation).
        const cached = memory.lastValid.get(id);
        const generation = obj.metadata?.generation;
        const reuse = cached && generation !== undefined && cached.compiled.generation === generation ? cached : undefined;
        const compiled = reuse?.compiled ?? (await compilePolicy(obj, where, 'object'));
        const { status: _s, ...clean } = obj;
        memory.lastValid.set(id, { compiled, obj: clean });
        inForce.push({ kind: kind.kind, obj: clean, compiled });
        outcomes.push({ kind, obj, ok: true, reason: 'Valid', message: 'policy is valid and in force', live: toLivePolicy(compiled) });
      } catch (err) {
        const problem = (err as Error).message;
        const kept = memory.lastValid.get(id) ?? (await fromPrevious(memory, kind, obj));
        if (kept && kept.compiled.mode === 'Enforce') {
          inForce.push({ kind: kind.kind, obj: kept.obj, compiled: kept.compiled });
          const message = `${problem}; generation ${kept.compiled.generation ?? '?'} (the last valid one) stays in force`;
          outcomes.push({ kind, obj, ok: false, reason: 'InvalidLastValidInForce', message, live: toLivePolicy(kept.compiled) });
          logger.warn({ policy: where, err }, 'policy invalid, last valid generation kept');
        } else {
          const b = brokenLivePolicy(obj, kind, problem);
          if (b.mode === 'Enforce') {
            broken.push(b);
            outcomes.push({
              kind,
              obj,
              ok: false,
              reason: 'InvalidRefusing',
              message: `${problem}; never valid: refusing the Applications it selects`,
              live: b,
            });
          } else {
            outcomes.push({ kind, obj, ok: false, reason: 'Invalid', message: `${problem}; not applied` });
          }
          logger.warn({ policy: where, err }, 'policy invalid, not applied');
        }
      }
    }
  }
  for (const id of memory.lastValid.keys()) if (!seen.has(id)) memory.lastValid.delete(id);
  return { inForce, broken, outcomes, seen };
}

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
  const branches =
    Array.isArray(spec.branches) && spec.branches.length > 0 && spec.branches.every((b) => typeof b === 'string')
      ? spec.branches
      : undefined;
  const namespace = kind.scope === 'Namespaced' ? obj.metadata?.namespace : undefined;
  const rules = repository && branches ? ({ repository, branches } as CompiledPolicy) : undefined;
  return {
    name: namespace ? `${namespace}/${obj.metadata?.name}` : (obj.metadata?.name ?? ''),
    scope: kind.scope,
    namespace,
    uid: obj.metadata?.uid,
    generation: obj.metadata?.generation,
    mode: spec.mode === 'Audit' ? 'Audit' : 'Enforce',
    selector: selector.success ? selector.data : {},
    governs: (repoUrl, branch) => (rules ? policiesFor([rules], repoUrl, branch, normalizeRepoUrl).length > 0 : true),
    broken: problem,
  };
}

export function revisionOf(inForce: { kind: string; obj: PolicyObject }[], broken: LivePolicy[]): string {
  const ids = [
    ...inForce.map(
      ({ kind, obj }) =>
        `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}/${obj.metadata?.uid ?? ''}@${obj.metadata?.generation ?? 0}`,
    ),
    ...broken.map((b) => `broken:${b.scope}/${b.namespace ?? ''}/${b.name}/${b.uid ?? ''}@${b.generation ?? 0}`),
  ].sort();
  return createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 16);
}
