import { describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { evaluateForApp, isLive, policySelects, selects, type LivePolicy, type SelectableApp } from './selection.js';

const app = (name: string, labels: Record<string, string> = {}, namespace = 'argocd'): SelectableApp => ({
  metadata: { name, namespace, labels },
});
const verdict = (policies: CommitVerdictJob['policies']): CommitVerdictJob => ({
  v: 1,
  kind: 'commit-verdict',
  deliveryId: 'd',
  repoUrl: 'https://github.com/org/app',
  cloneUrl: 'x',
  repoFullName: 'org/app',
  branch: 'main',
  sha: 'a'.repeat(40),
  outcome: policies.every((p) => p.ok) ? 'verified' : 'rejected',
  method: 'ssh',
  code: 'X',
  reasons: [],
  verifiedAt: '',
  policies,
});
const pr = (name: string, ok: boolean, mode: 'Enforce' | 'Audit' = 'Enforce', selector = {}, generation?: number) => ({
  name,
  ok,
  mode,
  selector,
  generation,
  code: ok ? 'VERIFIED' : 'UNSIGNED',
  reason: ok ? undefined : 'commit is not signed',
});
const live = (name: string, generation: number, selector = {}, mode: 'Enforce' | 'Audit' = 'Enforce'): LivePolicy => ({
  name,
  generation,
  selector,
  mode,
  governs: () => true,
});

describe('selects', () => {
  it('matches labels, names and namespaces; empty selects all', () => {
    expect(selects({}, app('a'))).toBe(true);
    expect(selects({ matchLabels: { env: 'prod' } }, app('a', { env: 'prod', x: 'y' }))).toBe(true);
    expect(selects({ matchLabels: { env: 'prod' } }, app('a', { env: 'dev' }))).toBe(false);
    expect(selects({ names: ['a'] }, app('a'))).toBe(true);
    expect(selects({ names: ['argocd/a'] }, app('a'))).toBe(true);
    expect(selects({ names: ['b'] }, app('a'))).toBe(false);
    expect(selects({ namespaces: ['team'] }, app('a'))).toBe(false);
  });
});

describe('evaluateForApp', () => {
  it('default deny when no policy selects the Application', () => {
    expect(evaluateForApp(app('a'), verdict([]))).toMatchObject({ kind: 'no-policy' });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', { names: ['b'] })]))).toMatchObject({ kind: 'no-policy' });
  });
  it('every selecting Enforce policy must pass', () => {
    expect(evaluateForApp(app('a'), verdict([pr('p', true), pr('q', true)]))).toMatchObject({ kind: 'enforce-pass', policies: ['p', 'q'] });
    expect(evaluateForApp(app('a'), verdict([pr('p', true), pr('q', false)]))).toMatchObject({ kind: 'enforce-fail', code: 'UNSIGNED' });
    // A failing policy that does not select this Application does not count.
    expect(
      evaluateForApp(app('a', { env: 'prod' }), verdict([pr('p', true), pr('q', false, 'Enforce', { matchLabels: { env: 'dev' } })])),
    ).toMatchObject({ kind: 'enforce-pass' });
  });
  it('only Audit policies: audit outcome says what enforce would have done', () => {
    expect(evaluateForApp(app('a'), verdict([pr('p', false, 'Audit')]))).toMatchObject({ kind: 'audit', wouldPass: false });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Audit')]))).toMatchObject({ kind: 'audit', wouldPass: true });
    // Enforce wins over Audit when both select.
    expect(evaluateForApp(app('a'), verdict([pr('p', false, 'Audit'), pr('q', true)]))).toMatchObject({ kind: 'enforce-pass' });
  });
  it('a verdict computed with an older generation, or without a policy that now selects, is stale', () => {
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 2)])).toMatchObject({ kind: 'stale' });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 1), live('new', 1)])).toMatchObject({
      kind: 'stale',
      policies: ['new'],
    });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 1)])).toMatchObject({ kind: 'enforce-pass' });
    // A live policy that does not select this Application is irrelevant to it.
    expect(
      evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 1), live('other', 1, { names: ['z'] })]),
    ).toMatchObject({ kind: 'enforce-pass' });
  });
});

// Identity-carrying results and live policies, as the verifier and the watcher produce them.
type Scope = 'Namespaced' | 'Cluster' | 'File';
const res = (
  name: string,
  ok: boolean,
  o: { scope?: Scope; namespace?: string; uid?: string; generation?: number; mode?: 'Enforce' | 'Audit'; selector?: object } = {},
) => ({
  ...pr(name, ok, o.mode ?? 'Enforce', o.selector ?? {}, o.generation ?? 1),
  scope: o.scope ?? 'Namespaced',
  namespace: o.namespace,
  uid: o.uid ?? `uid-${name}`,
});
const lp = (
  name: string,
  o: {
    scope?: Scope;
    namespace?: string;
    uid?: string;
    generation?: number;
    mode?: 'Enforce' | 'Audit';
    selector?: object;
    broken?: string;
    governs?: boolean;
  } = {},
): LivePolicy => ({
  name,
  scope: o.scope ?? 'Namespaced',
  namespace: o.namespace,
  uid: o.uid ?? `uid-${name}`,
  generation: o.generation ?? 1,
  mode: o.mode ?? 'Enforce',
  selector: o.selector ?? {},
  governs: () => o.governs ?? true,
  broken: o.broken,
});

describe('namespaces are tenant boundaries', () => {
  it('a namespaced GatePolicy selects only its own namespace; its selector narrows, never widens', () => {
    const tenant = { scope: 'Namespaced' as const, namespace: 'team-a', selector: {} };
    expect(policySelects(tenant, app('shop', {}, 'team-a'))).toBe(true);
    expect(policySelects(tenant, app('shop', {}, 'argocd'))).toBe(false);
    expect(policySelects({ ...tenant, selector: { namespaces: ['argocd'] } }, app('shop', {}, 'argocd'))).toBe(false);
    expect(policySelects({ ...tenant, selector: { names: ['argocd/shop'] } }, app('shop', {}, 'argocd'))).toBe(false);
    // A namespaced result without a namespace cannot be placed: it selects nothing.
    expect(policySelects({ scope: 'Namespaced', selector: {} }, app('shop'))).toBe(false);
    // Cluster-scoped and operator file policies select across namespaces.
    expect(policySelects({ scope: 'Cluster', selector: {} }, app('shop', {}, 'argocd'))).toBe(true);
    expect(policySelects({ scope: 'File', selector: { namespaces: ['argocd'] } }, app('shop', {}, 'argocd'))).toBe(true);
  });

  it('attacker: an Audit GatePolicy in team-a does not audit-pin an unsigned commit into argocd/shop', () => {
    const v = verdict([res('team-a/yolo', false, { namespace: 'team-a', mode: 'Audit' })]);
    expect(evaluateForApp(app('shop'), v)).toMatchObject({ kind: 'no-policy' });
    expect(evaluateForApp(app('shop'), v, [lp('team-a/yolo', { namespace: 'team-a', mode: 'Audit' })])).toMatchObject({
      kind: 'no-policy',
    });
  });

  it('attacker: an Enforce GatePolicy in team-a trusting a tenant key does not open a default-deny app in argocd', () => {
    const v = verdict([res('team-a/mine', true, { namespace: 'team-a', selector: { namespaces: ['argocd'] } })]);
    expect(evaluateForApp(app('shop'), v)).toMatchObject({ kind: 'no-policy' });
    expect(
      evaluateForApp(app('shop'), v, [lp('team-a/mine', { namespace: 'team-a', selector: { namespaces: ['argocd'] } })]),
    ).toMatchObject({ kind: 'no-policy' });
    // In its own namespace it works as before.
    const own = verdict([res('team-a/mine', true, { namespace: 'team-a' })]);
    expect(evaluateForApp(app('shop', {}, 'team-a'), own, [lp('team-a/mine', { namespace: 'team-a' })])).toMatchObject({
      kind: 'enforce-pass',
    });
  });

  it('a ClusterGatePolicy selects across namespaces', () => {
    const v = verdict([res('platform', true, { scope: 'Cluster' })]);
    expect(evaluateForApp(app('shop', {}, 'team-b'), v, [lp('platform', { scope: 'Cluster' })])).toMatchObject({ kind: 'enforce-pass' });
  });
});

describe('a verdict counts only under the policy generation live now', () => {
  const enforce = () => res('argocd/p', true, { namespace: 'argocd' });
  it('attacker: a result of a deleted policy does not pin (nothing live remains → refuse)', () => {
    expect(evaluateForApp(app('shop'), verdict([enforce()]), [])).toMatchObject({ kind: 'no-policy' });
  });
  it('attacker: a result of a policy narrowed to other Applications does not pin', () => {
    const narrowed = lp('argocd/p', { namespace: 'argocd', generation: 2, selector: { names: ['other'] } });
    expect(evaluateForApp(app('shop'), verdict([enforce()]), [narrowed])).toMatchObject({ kind: 'no-policy' });
  });
  it('attacker: a result of a policy moved to other branches does not pin', () => {
    const moved = lp('argocd/p', { namespace: 'argocd', governs: false });
    expect(evaluateForApp(app('shop'), verdict([enforce()]), [moved])).toMatchObject({ kind: 'no-policy' });
  });
  it('attacker: a policy deleted and re-created under the same name (new uid) does not inherit old results', () => {
    expect(evaluateForApp(app('shop'), verdict([enforce()]), [lp('argocd/p', { namespace: 'argocd', uid: 'new' })])).toMatchObject({
      kind: 'stale',
    });
  });
  it('a result of the live generation counts; file policy results count on their own', () => {
    expect(evaluateForApp(app('shop'), verdict([enforce()]), [lp('argocd/p', { namespace: 'argocd' })])).toMatchObject({
      kind: 'enforce-pass',
    });
    expect(evaluateForApp(app('shop'), verdict([res('file', true, { scope: 'File' })]), [])).toMatchObject({ kind: 'enforce-pass' });
    expect(isLive(enforce(), [lp('argocd/p', { namespace: 'argocd' })])?.name).toBe('argocd/p');
    expect(isLive(enforce(), [lp('argocd/p', { namespace: 'argocd', generation: 2 })])).toBeUndefined();
  });
});

describe('fail closed on invalid policies', () => {
  it('attacker: a broken Enforce policy refuses even when an Audit policy also selects the Application', () => {
    const v = verdict([res('argocd/audit', false, { namespace: 'argocd', mode: 'Audit' })]);
    const liveSet = [
      lp('argocd/audit', { namespace: 'argocd', mode: 'Audit' }),
      lp('argocd/strict', { namespace: 'argocd', broken: 'spec.commits: required' }),
    ];
    expect(evaluateForApp(app('shop'), v, liveSet)).toMatchObject({ kind: 'invalid-policy', policies: ['argocd/strict'] });
    // It refuses only what it would select.
    expect(
      evaluateForApp(app('shop', {}, 'team-b'), verdict([res('c', true, { scope: 'Cluster' })]), [
        ...liveSet,
        lp('c', { scope: 'Cluster' }),
      ]),
    ).toMatchObject({ kind: 'enforce-pass' });
  });
  it('a broken Audit policy refuses nothing by itself', () => {
    const v = verdict([res('argocd/e', true, { namespace: 'argocd' })]);
    expect(
      evaluateForApp(app('shop'), v, [
        lp('argocd/e', { namespace: 'argocd' }),
        lp('argocd/a', { namespace: 'argocd', mode: 'Audit', broken: 'bad' }),
      ]),
    ).toMatchObject({ kind: 'enforce-pass' });
  });
});
