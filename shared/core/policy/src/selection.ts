/**
 * Which policies govern one Application, and what they say about one verdict. Pure.
 *
 * - Default deny: an opted-in Application that no policy selects is never moved.
 * - Tenancy: a namespaced GatePolicy selects only Applications of its own namespace (its selector can narrow within
 *   it, never widen); a ClusterGatePolicy and an operator's policy file select across namespaces.
 * - Enforce: every selecting Enforce policy must have passed.
 * - Audit (only Audit policies select the Application): the gate pins as it would without gitops-gate and records
 *   what Enforce would have done — for rolling policies out. Audit never overrides an Enforce policy, broken or not.
 * - Live: with a policy watch, a verdict's result counts only while the same object (scope, namespace, name, uid) at
 *   the same generation is live, valid, selects the Application and governs the branch. A live policy without a
 *   result is stale (verify again); a result whose policy is gone or changed counts for nothing.
 * - Broken: an Enforce policy that was never valid refuses every Application it would select.
 */
import { policyKey, type CommitVerdictJob, type PolicyIdentity, type PolicyResult, type PolicySelector } from '@gitops-gate/contracts';

/** The fields of an Argo CD Application that selection reads (the gate's Application type has them). */
export interface SelectableApp {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

/** `namespace/name` of an Application (namespace `default` when unset), as selectors and statuses name it. */
export function appKey(app: SelectableApp): string {
  return `${app.metadata.namespace ?? 'default'}/${app.metadata.name}`;
}

export interface LivePolicy {
  name: string;
  /** Identity of the object (see policyKey in contracts); a namespaced GatePolicy selects only its own namespace. */
  scope?: 'Namespaced' | 'Cluster' | 'File';
  namespace?: string;
  uid?: string;
  generation?: number;
  mode: 'Enforce' | 'Audit';
  selector: PolicySelector;
  /** Governs pushes to this repository (normalised) and these branches (globs)? */
  governs(repoUrl: string, branch: string): boolean;
  /**
   * Set when the object never had a valid generation: it cannot verify anything, so (as Enforce) it refuses every
   * Application it would select (`refuse-invalid-policy`) instead of silently letting other policies decide.
   */
  broken?: string;
}

/** The identity fields of a policy result or live policy (for policyKey). */
export function policyIdentity(p: PolicyIdentity): PolicyIdentity {
  return { scope: p.scope ?? 'Namespaced', namespace: p.namespace, name: p.name, uid: p.uid, generation: p.generation };
}

/** The live, valid policy a result was computed with, if that exact generation is still in force. */
export function isLive(result: PolicyIdentity, live: LivePolicy[]): LivePolicy | undefined {
  const key = policyKey(policyIdentity(result));
  return live.find((l) => !l.broken && policyKey(policyIdentity({ ...l, scope: l.scope ?? 'Namespaced' })) === key);
}

/** Selector match only (labels, names, namespaces); see policySelects for the tenancy rule. */
export function selects(selector: PolicySelector, app: SelectableApp): boolean {
  const ns = app.metadata.namespace ?? 'default';
  if (selector.namespaces?.length && !selector.namespaces.includes(ns)) return false;
  if (selector.names?.length && !selector.names.includes(app.metadata.name) && !selector.names.includes(appKey(app))) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (app.metadata.labels?.[k] !== v) return false;
  return true;
}

/**
 * Does this policy (live, or a verdict's result) select the Application? A namespaced GatePolicy is a tenant's
 * object: it selects only its own namespace whatever its selector says, and one without a namespace selects nothing.
 * Without a scope (a caller that did not parse the contract) the namespace, if any, still binds it.
 */
export function policySelects(
  p: { scope?: PolicyIdentity['scope']; namespace?: string; selector: PolicySelector },
  app: SelectableApp,
): boolean {
  const ns = app.metadata.namespace ?? 'default';
  if (p.scope === 'Namespaced' && p.namespace === undefined) return false;
  if ((p.scope === 'Namespaced' || p.scope === undefined) && p.namespace !== undefined && p.namespace !== ns) return false;
  return selects(p.selector, app);
}

export type PolicyOutcome =
  | { kind: 'enforce-pass'; policies: string[] }
  | { kind: 'enforce-fail'; policies: string[]; reason: string; code: string }
  | { kind: 'audit'; policies: string[]; wouldPass: boolean; reason: string }
  | { kind: 'no-policy'; reason: string }
  | { kind: 'invalid-policy'; policies: string[]; reason: string }
  | { kind: 'stale'; policies: string[]; reason: string };

/**
 * The results of a verdict that count for this Application now. Without a watch (`live` undefined: file policies
 * only) every selecting result counts. With one, a result counts only under its live generation (see isLive), and
 * file policies (scope File: the operator's, not watched) count on their own.
 */
export function countingResults(
  results: PolicyResult[],
  app: SelectableApp,
  repoUrl: string,
  branch: string,
  live: LivePolicy[] | undefined,
): PolicyResult[] {
  return results.filter((r) => {
    if (!policySelects(r, app)) return false;
    if (live === undefined || r.scope === 'File') return true;
    const l = isLive(r, live);
    return l !== undefined && l.mode === r.mode && policySelects(l, app) && l.governs(repoUrl, branch);
  });
}

/** Live policies that select this Application for this repository and branch. */
export function liveSelecting(live: LivePolicy[], app: SelectableApp, repoUrl: string, branch: string): LivePolicy[] {
  return live.filter((l) => l.governs(repoUrl, branch) && policySelects(l, app));
}

export function evaluateForApp(app: SelectableApp, verdict: CommitVerdictJob, live?: LivePolicy[]): PolicyOutcome {
  const selectingLive = live ? liveSelecting(live, app, verdict.repoUrl, verdict.branch) : [];
  // Fail closed: a broken Enforce policy refuses before anything else is considered, Audit policies included.
  const broken = selectingLive.filter((l) => l.broken !== undefined && l.mode === 'Enforce');
  if (broken.length > 0) {
    return {
      kind: 'invalid-policy',
      policies: broken.map((b) => b.name),
      reason: `policy ${broken.map((b) => `${b.name}: ${b.broken}`).join('; ')} is invalid and has no valid generation: refusing what it selects`,
    };
  }
  const selecting = countingResults(verdict.policies, app, verdict.repoUrl, verdict.branch, live);
  // Policies that select the Application now must have been part of the verification, at their live generation.
  const stale = selectingLive.filter((l) => l.broken === undefined && !selecting.some((r) => isLive(r, [l])));
  if (stale.length > 0) {
    return {
      kind: 'stale',
      policies: stale.map((s) => s.name),
      reason: `verdict predates policy ${stale.map((s) => `${s.name}@${s.generation ?? '?'}`).join(', ')}: verifying again`,
    };
  }
  if (selecting.length === 0) {
    return { kind: 'no-policy', reason: 'no live policy selects this Application (default deny)' };
  }
  const names = (rs: PolicyResult[]) => rs.map((r) => r.name);
  const enforce = selecting.filter((r) => r.mode === 'Enforce');
  if (enforce.length > 0) {
    const failing = enforce.find((r) => !r.ok);
    if (failing)
      return {
        kind: 'enforce-fail',
        policies: names(enforce),
        code: failing.code,
        reason: `policy ${failing.name}: ${failing.code}: ${failing.reason ?? ''}`.trim(),
      };
    return { kind: 'enforce-pass', policies: names(enforce) };
  }
  const failing = selecting.find((r) => !r.ok);
  return {
    kind: 'audit',
    policies: names(selecting),
    wouldPass: !failing,
    reason: failing
      ? `audit: policy ${failing.name} would refuse: ${failing.code}: ${failing.reason ?? ''}`.trim()
      : 'audit: every policy would allow it',
  };
}
