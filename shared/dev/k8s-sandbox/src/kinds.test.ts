import { describe, expect, it } from 'vitest';
import { argoApplicationKind, demoApplication } from './kinds.js';

describe('argoApplicationKind.validate', () => {
  const validate = argoApplicationKind.validate!;

  it('accepts the demo Application', () => {
    const app = demoApplication({ name: 'web', repoURL: 'https://example.invalid/r.git', branch: 'main', path: 'apps/web' }) as any;
    expect(validate(app)).toEqual([]);
    expect(app.metadata).toEqual({ name: 'web', namespace: 'argocd', annotations: { 'gitops-gate.io/branch': 'main' } });
    expect(app.spec).toEqual({
      project: 'default',
      source: { repoURL: 'https://example.invalid/r.git', targetRevision: 'main', path: 'apps/web' },
      destination: { server: 'https://kubernetes.default.svc', namespace: 'web' },
    });
  });

  it('words problems like the apiserver does', () => {
    const noDest = demoApplication({ name: 'a', repoURL: 'r', branch: 'b' }) as any;
    delete noDest.spec.destination;
    expect(validate(noDest)).toEqual(['spec.destination: Required value']);
    const wrongType = demoApplication({ name: 'a', repoURL: 'r', branch: 'b' }) as any;
    wrongType.spec.project = 5;
    expect(validate(wrongType)).toEqual(['spec.project: Invalid value: "integer": spec.project in body must be of type string: "integer"']);
    expect(validate({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'a' } })).toEqual([
      'spec: Required value',
    ]);
  });
});
