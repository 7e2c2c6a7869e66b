/**
 * Which policies govern one Application, and what they say about one verdict. Pure.
 *
 * - Default deny: an opted-in Application that no policy selects is never moved.
 * - Enforce: every selecting Enforce policy must have passed.
 * - Audit (only Audit policies select the Application): the gate pins as it would without gitops-gate and records
 *   what Enforce would have done — for rolling policies out.
 * - Stale: a policy that selects the Application now but whose current generation the verdict was not computed
 *   with; the commit must be verified again before anything moves.
 */
import type { CommitVerdictJob, PolicyResult, PolicySelector } from '@gitops-gate/contracts';
import { appKey, type Application } from './applications.js';

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
}

export function selects(selector: PolicySelector, app: Application): boolean {
  const ns = app.metadata.namespace ?? 'default';
  if (selector.namespaces?.length && !selector.namespaces.includes(ns)) return false;
  if (selector.names?.length && !selector.names.includes(app.metadata.name) && !selector.names.includes(appKey(app))) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (app.metadata.labels?.[k] !== v) return false;
  return true;
}

export type PolicyOutcome =
  | { kind: 'enforce-pass'; policies: string[] }
  | { kind: 'enforce-fail'; policies: string[]; reason: string; code: string }
  | { kind: 'audit'; policies: string[]; wouldPass: boolean; reason: string }
  | { kind: 'no-policy'; reason: string }
  | { kind: 'stale'; policies: string[]; reason: string };

export function evaluateForApp(app: Application, verdict: CommitVerdictJob, live: LivePolicy[] = []): PolicyOutcome {
  const selecting = verdict.policies.filter((p) => selects(p.selector, app));
  // Policies that select the Application now must have been part of the verification, at their current generation.
  const stale = live.filter(
    (l) =>
      l.governs(verdict.repoUrl, verdict.branch) &&
      selects(l.selector, app) &&
      !selecting.some((r) => r.name === l.name && (l.generation === undefined || r.generation === l.generation)),
  );
  if (stale.length > 0) {
    return {
      kind: 'stale',
      policies: stale.map((s) => s.name),
      reason: `verdict predates policy ${stale.map((s) => `${s.name}@${s.generation ?? '?'}`).join(', ')}: verifying again`,
    };
  }
  if (selecting.length === 0) {
    return { kind: 'no-policy', reason: 'no policy selects this Application (default deny)' };
  }
  const names = (rs: PolicyResult[]) => rs.map((r) => r.name);
  const enforce = selecting.filter((r) => r.mode === 'Enforce');
  if (enforce.length > 0) {
    const failing = enforce.find((r) => !r.ok);
    if (failing) return { kind: 'enforce-fail', policies: names(enforce), code: failing.code, reason: `policy ${failing.name}: ${failing.code}: ${failing.reason ?? ''}`.trim() };
    return { kind: 'enforce-pass', policies: names(enforce) };
  }
  const failing = selecting.find((r) => !r.ok);
  return {
    kind: 'audit',
    policies: names(selecting),
    wouldPass: !failing,
    reason: failing ? `audit: policy ${failing.name} would refuse: ${failing.code}: ${failing.reason ?? ''}`.trim() : 'audit: every policy would allow it',
  };
}
