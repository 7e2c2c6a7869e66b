import { describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import type { Application } from './applications.js';
import { evaluateForApp, selects, type LivePolicy } from './policies.js';

const app = (name: string, labels: Record<string, string> = {}, namespace = 'argocd'): Application => ({ metadata: { name, namespace, labels } });
const verdict = (policies: CommitVerdictJob['policies']): CommitVerdictJob => ({
  v: 1, kind: 'commit-verdict', deliveryId: 'd', repoUrl: 'https://github.com/org/app', cloneUrl: 'x', repoFullName: 'org/app', branch: 'main',
  sha: 'a'.repeat(40), outcome: policies.every((p) => p.ok) ? 'verified' : 'rejected', method: 'ssh', code: 'X', reasons: [], verifiedAt: '', policies,
});
const pr = (name: string, ok: boolean, mode: 'Enforce' | 'Audit' = 'Enforce', selector = {}, generation?: number) => ({ name, ok, mode, selector, generation, code: ok ? 'VERIFIED' : 'UNSIGNED', reason: ok ? undefined : 'commit is not signed' });
const live = (name: string, generation: number, selector = {}, mode: 'Enforce' | 'Audit' = 'Enforce'): LivePolicy => ({ name, generation, selector, mode, governs: () => true });

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
    expect(evaluateForApp(app('a', { env: 'prod' }), verdict([pr('p', true), pr('q', false, 'Enforce', { matchLabels: { env: 'dev' } })]))).toMatchObject({ kind: 'enforce-pass' });
  });
  it('only Audit policies: audit outcome says what enforce would have done', () => {
    expect(evaluateForApp(app('a'), verdict([pr('p', false, 'Audit')]))).toMatchObject({ kind: 'audit', wouldPass: false });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Audit')]))).toMatchObject({ kind: 'audit', wouldPass: true });
    // Enforce wins over Audit when both select.
    expect(evaluateForApp(app('a'), verdict([pr('p', false, 'Audit'), pr('q', true)]))).toMatchObject({ kind: 'enforce-pass' });
  });
  it('a verdict computed with an older generation, or without a policy that now selects, is stale', () => {
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 2)])).toMatchObject({ kind: 'stale' });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 1), live('new', 1)])).toMatchObject({ kind: 'stale', policies: ['new'] });
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 1)])).toMatchObject({ kind: 'enforce-pass' });
    // A live policy that does not select this Application is irrelevant to it.
    expect(evaluateForApp(app('a'), verdict([pr('p', true, 'Enforce', {}, 1)]), [live('p', 1), live('other', 1, { names: ['z'] })])).toMatchObject({ kind: 'enforce-pass' });
  });
});
