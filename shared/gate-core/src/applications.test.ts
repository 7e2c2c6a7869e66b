import { describe, expect, it } from 'vitest';
import { BRANCH_ANNOTATION, findTrackingApps, withRevision, type Application } from './applications.js';

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
    app('multi', { [BRANCH_ANNOTATION]: 'main' }, {
      sources: [
        { repoURL: 'https://charts.example.com', targetRevision: '1.2.3' },
        { repoURL: 'https://github.com/org/app.git', targetRevision: 'main' },
      ],
    }),
    // `sources` wins over `source` in Argo CD, so a stale `source` must not count.
    app('sources-win', { [BRANCH_ANNOTATION]: 'main' }, { source: { repoURL: REPO }, sources: [{ repoURL: 'https://x.example/y' }] }),
  ];
  it('matches opted-in apps by normalised repo URL and branch, single and multi-source', () => {
    const found = findTrackingApps(apps, 'https://github.com/org/app.git', 'main');
    expect(found.map((f) => f.app.metadata.name)).toEqual(['single', 'multi']);
    expect(found[1]?.refs).toEqual([{ kind: 'sources', index: 1 }]);
  });
  it('writes the sha only into tracking sources', () => {
    const multi = findTrackingApps(apps, REPO, 'main')[1]!;
    const spec = withRevision(multi.app, multi.refs, 'a'.repeat(40));
    expect(spec.sources?.[0]?.targetRevision).toBe('1.2.3');
    expect(spec.sources?.[1]?.targetRevision).toBe('a'.repeat(40));
    expect(multi.app.spec?.sources?.[1]?.targetRevision).toBe('main');
  });
});
