/**
 * Evaluates our admission policies the way the API server (ValidatingAdmissionPolicy) and Kyverno (ClusterPolicy
 * with CEL rules) do, with a real CEL implementation, on AdmissionRequest-shaped inputs.
 *
 * VAP: matchConstraints (operation/resource) -> every matchCondition true -> variables (in order, each may use
 * the earlier ones) -> every validation true, else denied with its messageExpression.
 * Kyverno: match (kind/operation) -> exclude (subjects) -> every celPrecondition true -> validate.cel the same way.
 */
import { evaluate } from '@marcbachmann/cel-js';
import type { K8sObject } from './render.js';

export type UserInfo = { username: string; groups?: string[] };
export type AdmissionRequest = {
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  userInfo: UserInfo;
  resource: { group: string; version: string; resource: string };
  namespace?: string;
  name?: string;
};
export type Verdict = { matched: boolean; allowed: boolean; messages: string[] };

type Expr = { name?: string; expression: string; messageExpression?: string; message?: string };

function celBool(expression: string, ctx: Record<string, unknown>, what: string): boolean {
  const v = evaluate(expression, ctx);
  if (typeof v !== 'boolean') throw new Error(`${what} did not evaluate to a bool: ${String(v)}`);
  return v;
}

function runValidations(
  variables: Expr[],
  validations: Expr[],
  base: { object: unknown; oldObject: unknown; request: AdmissionRequest },
): Verdict {
  const vars: Record<string, unknown> = {};
  const ctx = { ...base, variables: vars };
  for (const v of variables) vars[v.name!] = evaluate(v.expression, ctx);
  const messages: string[] = [];
  for (const [i, v] of validations.entries()) {
    if (!celBool(v.expression, ctx, `validation ${i}`)) {
      const msg = v.messageExpression ? evaluate(v.messageExpression, ctx) : (v.message ?? `validation ${i} failed`);
      messages.push(String(msg));
    }
  }
  return { matched: true, allowed: messages.length === 0, messages };
}

/** Admission by one ValidatingAdmissionPolicy (bound with validationActions [Deny]). */
export function admitVap(policy: K8sObject, request: AdmissionRequest, object: unknown, oldObject: unknown): Verdict {
  const spec = policy.spec;
  const rules: { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[] }[] =
    spec.matchConstraints.resourceRules;
  const ruleMatches = rules.some(
    (r) =>
      (r.apiGroups.includes('*') || r.apiGroups.includes(request.resource.group)) &&
      (r.apiVersions.includes('*') || r.apiVersions.includes(request.resource.version)) &&
      (r.operations.includes('*') || r.operations.includes(request.operation)) &&
      (r.resources.includes('*') || r.resources.includes(request.resource.resource)),
  );
  if (!ruleMatches) return { matched: false, allowed: true, messages: [] };
  const base = { object, oldObject, request };
  for (const c of (spec.matchConditions ?? []) as Expr[]) {
    if (!celBool(c.expression, base, `matchCondition ${c.name}`)) return { matched: false, allowed: true, messages: [] };
  }
  return runValidations(spec.variables ?? [], spec.validations, base);
}

/** Admission by one Kyverno ClusterPolicy whose rules use `validate.cel`. */
export function admitKyverno(policy: K8sObject, request: AdmissionRequest, object: unknown, oldObject: unknown): Verdict {
  const kindOf = (o: unknown) => (o as K8sObject | null)?.kind;
  const apiVersionOf = (o: unknown) => (o as K8sObject | null)?.apiVersion;
  const obj = object ?? oldObject;
  const gvk = `${apiVersionOf(obj)}/${kindOf(obj)}`;
  const messages: string[] = [];
  let matched = false;
  for (const rule of policy.spec.rules) {
    const matches = (rule.match.any as { resources: { kinds: string[]; operations?: string[] } }[]).some(
      (m) =>
        m.resources.kinds.some((k) => k === gvk || k === kindOf(obj)) &&
        (!m.resources.operations || m.resources.operations.includes(request.operation)),
    );
    if (!matches) continue;
    const excluded = ((rule.exclude?.any ?? []) as { subjects?: { kind: string; name: string; namespace?: string }[] }[]).some(
      (e) =>
        (e.subjects ?? []).some(
          (s) =>
            (s.kind === 'ServiceAccount' && request.userInfo.username === `system:serviceaccount:${s.namespace}:${s.name}`) ||
            (s.kind === 'User' && request.userInfo.username === s.name) ||
            (s.kind === 'Group' && (request.userInfo.groups ?? []).includes(s.name)),
        ),
    );
    if (excluded) continue;
    const base = { object, oldObject, request };
    const pre = ((rule.celPreconditions ?? []) as Expr[]).every((c) => celBool(c.expression, base, `celPrecondition ${c.name}`));
    if (!pre) continue;
    matched = true;
    const v = runValidations(rule.validate.cel.variables ?? [], rule.validate.cel.expressions, base);
    messages.push(...v.messages);
  }
  return { matched, allowed: messages.length === 0, messages };
}

export const APPLICATIONS = { group: 'argoproj.io', version: 'v1alpha1', resource: 'applications' };

export function update(username: string, groups: string[] = []): AdmissionRequest {
  return { operation: 'UPDATE', userInfo: { username, groups }, resource: APPLICATIONS };
}

export function create(username: string, groups: string[] = []): AdmissionRequest {
  return { operation: 'CREATE', userInfo: { username, groups }, resource: APPLICATIONS };
}
