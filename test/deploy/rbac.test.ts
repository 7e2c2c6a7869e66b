/**
 * Least privilege: only the gate talks to the Kubernetes API, with exactly the rules it needs.
 */
import { describe, expect, it } from 'vitest';
import { find, NAMESPACE, one, OVERLAYS, podTemplates, renderOverlay, renderWithComponents, type K8sObject } from './lib/render.js';

type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] };

/** One line per (group, resource, verb), so rule layout does not matter but every grant does. */
function grants(rules: Rule[]): string[] {
  const out: string[] = [];
  for (const r of rules) {
    for (const g of r.apiGroups ?? ['<none>'])
      for (const res of r.resources ?? r.nonResourceURLs ?? ['<none>'])
        for (const v of r.verbs) out.push(`${g}|${res}|${v}${r.resourceNames ? `|${r.resourceNames.join(',')}` : ''}`);
  }
  return out.sort();
}

const EXPECTED_GATE_GRANTS = grants([
  { apiGroups: ['argoproj.io'], resources: ['applications'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  { apiGroups: ['gitops-gate.io'], resources: ['gatepolicies'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['gitops-gate.io'], resources: ['gatepolicies/status'], verbs: ['patch'] },
]);

const saUser = (sa: K8sObject) => `system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`;

function subjectsBoundTo(docs: K8sObject[], roleKind: string, roleName: string): string[] {
  return [...find(docs, 'RoleBinding'), ...find(docs, 'ClusterRoleBinding')]
    .filter((b) => b.roleRef.kind === roleKind && b.roleRef.name === roleName)
    .flatMap((b) =>
      (b.subjects ?? []).map((s: { kind: string; name: string; namespace?: string }) =>
        s.kind === 'ServiceAccount' ? `system:serviceaccount:${s.namespace ?? b.metadata.namespace}:${s.name}` : `${s.kind}:${s.name}`,
      ),
    );
}

describe.each(OVERLAYS)('RBAC (%s)', (overlay) => {
  const docs = () => renderOverlay(overlay);

  it('has one ServiceAccount per service, each used by its Deployment', () => {
    for (const s of ['receiver', 'verifier', 'gate']) {
      const sa = one(docs(), 'ServiceAccount', `gitops-gate-${s}`);
      expect(sa.metadata.namespace).toBe(NAMESPACE);
      expect(one(docs(), 'Deployment', `gitops-gate-${s}`).spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    }
  });

  it('grants the gate exactly: applications get/list/watch/patch/update, gatepolicies get/list/watch, gatepolicies/status patch', () => {
    const roles = [...find(docs(), 'Role'), ...find(docs(), 'ClusterRole')];
    expect(roles.map((r) => `${r.kind}/${r.metadata.name}`)).toEqual(['ClusterRole/gitops-gate-gate']);
    const role = roles[0]!;
    expect(role.aggregationRule).toBeUndefined();
    expect(grants(role.rules)).toEqual(EXPECTED_GATE_GRANTS);
    const gate = one(docs(), 'ServiceAccount', 'gitops-gate-gate');
    expect(subjectsBoundTo(docs(), 'ClusterRole', 'gitops-gate-gate')).toEqual([saUser(gate)]);
  });

  it('binds nothing else: no other binding, no built-in ClusterRole, nothing for the receiver or the verifier', () => {
    const bindings = [...find(docs(), 'RoleBinding'), ...find(docs(), 'ClusterRoleBinding')];
    expect(bindings.map((b) => `${b.roleRef.kind}/${b.roleRef.name}`)).toEqual(['ClusterRole/gitops-gate-gate']);
    for (const s of ['receiver', 'verifier']) {
      const sa = one(docs(), 'ServiceAccount', `gitops-gate-${s}`);
      const bound = bindings.flatMap((b) => b.subjects ?? []).filter((x: { name: string }) => x.name === sa.metadata.name);
      expect(bound, s).toEqual([]);
    }
  });

  it('mounts no API token into the receiver and the verifier', () => {
    for (const s of ['receiver', 'verifier']) {
      const sa = one(docs(), 'ServiceAccount', `gitops-gate-${s}`);
      expect(sa.automountServiceAccountToken, s).toBe(false);
      expect(one(docs(), 'Deployment', `gitops-gate-${s}`).spec.template.spec.automountServiceAccountToken, s).toBe(false);
    }
    // Every other pod that does not need the API (dev Redis) goes without a token as well.
    for (const { owner, template } of podTemplates(docs())) {
      if (owner.metadata.name === 'gitops-gate-gate') continue;
      expect(template.spec.automountServiceAccountToken, owner.metadata.name).toBe(false);
    }
  });
});

describe('RBAC with the optional components', () => {
  it('adds no permissions', () => {
    const docs = renderWithComponents('production', ['hpa', 'kyverno']);
    const roles = [...find(docs, 'Role'), ...find(docs, 'ClusterRole')];
    expect(roles.map((r) => r.metadata.name)).toEqual(['gitops-gate-gate']);
    expect(grants(roles[0]!.rules)).toEqual(EXPECTED_GATE_GRANTS);
  });
});
