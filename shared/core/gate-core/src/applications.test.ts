import { describe, expect, it } from 'vitest';
import { BRANCH_ANNOTATION, findTrackingApps, pinPatch, pinTestsHold, PinPatchError, type Application } from './applications.js';

function app(name: string, annotations: Record<string, string>, spec: Application['spec']): Application {
  return { metadata: { name, namespace: 'argocd', annotations }, spec };
}
const REPO = 'https://github.com/org/app';

describe('findTrackingApps', () => {
  const apps = [
    app('single', { [BRANCH_ANNOTATION]: 'main' }, { source: { repoURL: 'git@github.com:Org/App.git', targetRevision: 'main' } }),
    app('other-branch', { [BRANCH_ANNOTATION]: 'release' }, { source: { repoURL: REPO, targetRevision: 'release' } }),
    app('not-opted-in', {}, { source: { repoURL: REPO, targetRevision: 'main' } }),
    app('other-repo', { [BRANCH_ANNOTATION]: 'main' }, { source: { repoURL: 'https://github.com/org/app2', targetRevision: 'main' } }),
    app(
      'multi',
      { [BRANCH_ANNOTATION]: 'main' },
      {
        sources: [
          { repoURL: 'https://charts.example.com', targetRevision: '1.2.3' },
          { repoURL: 'https://github.com/org/app.git', targetRevision: 'main' },
        ],
      },
    ),
    // `sources` wins over `source` in Argo CD, so a stale `source` must not count.
    app('sources-win', { [BRANCH_ANNOTATION]: 'main' }, { source: { repoURL: REPO }, sources: [{ repoURL: 'https://x.example/y' }] }),
  ];
  it('matches opted-in apps by normalised repo URL and branch, single and multi-source', () => {
    const found = findTrackingApps(apps, 'https://github.com/org/app.git', 'main');
    expect(found.map((f) => f.app.metadata.name)).toEqual(['single', 'multi']);
    expect(found[1]?.refs).toEqual([{ kind: 'sources', index: 1 }]);
  });
  it('the pin patch writes the sha only into tracking sources, by index, and nothing else of the spec', () => {
    const multi = findTrackingApps(apps, REPO, 'main')[1]!;
    multi.app.metadata.resourceVersion = '42';
    const ops = pinPatch(multi.app, multi.refs, 'a'.repeat(40), { 'gitops-gate.io/verified-sha': 'a'.repeat(40) }, 'main');
    expect(ops).toEqual([
      { op: 'test', path: '/metadata/annotations/gitops-gate.io~1branch', value: 'main' },
      { op: 'test', path: '/spec/sources/1/repoURL', value: 'https://github.com/org/app.git' },
      { op: 'test', path: '/spec/sources/1/targetRevision', value: 'main' },
      { op: 'replace', path: '/metadata/resourceVersion', value: '42' },
      { op: 'add', path: '/spec/sources/1/targetRevision', value: 'a'.repeat(40) },
      { op: 'add', path: '/metadata/annotations/gitops-gate.io~1verified-sha', value: 'a'.repeat(40) },
    ]);
    // The chart source (index 0) is neither sent nor tested: a concurrent edit to it is not undone.
    expect(ops.some((o) => o.path.startsWith('/spec/sources/0'))).toBe(false);
    expect(multi.app.spec?.sources?.[1]?.targetRevision).toBe('main');
  });
  it('the pin patch tests only values that exist; without a resourceVersion nothing is written', () => {
    const a = app('x', { [BRANCH_ANNOTATION]: 'main' }, { source: { repoURL: REPO } });
    expect(() => pinPatch(a, [{ kind: 'source' }], 'b'.repeat(40), {}, 'main')).toThrow(PinPatchError);
    a.metadata.resourceVersion = '7';
    const ops = pinPatch(a, [{ kind: 'source' }], 'b'.repeat(40), {}, 'main');
    expect(ops.filter((o) => o.op === 'test').map((o) => o.path)).toEqual([
      '/metadata/annotations/gitops-gate.io~1branch',
      '/spec/source/repoURL',
    ]);
  });
  it('pinTestsHold tells a moved precondition from an unchanged one', () => {
    const a = app('x', { [BRANCH_ANNOTATION]: 'main' }, { source: { repoURL: REPO, targetRevision: 'main' } });
    a.metadata.resourceVersion = '1';
    const ops = pinPatch(a, [{ kind: 'source' }], 'c'.repeat(40), {}, 'main');
    expect(pinTestsHold(a, ops)).toBe(true);
    expect(pinTestsHold({ ...a, spec: { source: { repoURL: REPO, targetRevision: 'd'.repeat(40) } } }, ops)).toBe(false);
    expect(pinTestsHold({ ...a, metadata: { ...a.metadata, annotations: {} } }, ops)).toBe(false);
    // An unrelated change (syncPolicy, status) leaves the tests holding: only the resourceVersion tells it apart.
    expect(pinTestsHold({ ...a, spec: { ...a.spec, syncPolicy: { automated: {} } }, status: { sync: { status: 'Synced' } } }, ops)).toBe(
      true,
    );
  });
});
