/**
 * Least privilege: only the gate talks to the Kubernetes API, with exactly the rules it needs.
 */
import { Writable } from 'node:stream';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createPolicyWatcher } from '@gitops-gate/gate-store';
import { argoApplicationKind, clusterGatePolicyKind, createSandboxApiServer, gatePolicyKind } from '@gitops-gate/k8s-sandbox';
import { createLogger } from '@gitops-gate/telemetry';
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
  { apiGroups: ['gitops-gate.io'], resources: ['gatepolicies', 'clustergatepolicies'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['gitops-gate.io'], resources: ['gatepolicies/status', 'clustergatepolicies/status'], verbs: ['patch'] },
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

  it('grants the gate exactly: applications get/list/watch/patch/update, (cluster)gatepolicies get/list/watch, their status patch', () => {
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

describe('RBAC and the code agree', () => {
  it('every request the policy watcher makes is granted by the ClusterRole, and cluster-wide (a RoleBinding would 403)', async () => {
    const sandbox = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind, clusterGatePolicyKind] });
    const kc = new KubeConfig();
    kc.loadFromString(sandbox.kubeconfigYaml());
    const api = kc.makeApiClient(CustomObjectsApi);
    const spec = { repository: 'https://github.com/org/app', branches: ['main'], commits: { ssh: { allowedSigners: 'x' } } };
    await api.createNamespacedCustomObject({ group: 'gitops-gate.io', version: 'v1alpha1', plural: 'gatepolicies', namespace: 'argocd', body: { apiVersion: 'gitops-gate.io/v1alpha1', kind: 'GatePolicy', metadata: { name: 'p' }, spec } });
    await api.createClusterCustomObject({ group: 'gitops-gate.io', version: 'v1alpha1', plural: 'clustergatepolicies', body: { apiVersion: 'gitops-gate.io/v1alpha1', kind: 'ClusterGatePolicy', metadata: { name: 'c' }, spec } });
    const watcher = createPolicyWatcher({ kc, logger: createLogger('rbac', 'silent', new Writable({ write: (_c, _e, cb) => cb() })), onChange: () => undefined });
    try {
      await watcher.start();
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await watcher.stop();
      await sandbox.close();
    }
    const used = new Set<string>();
    for (const r of sandbox.requests()) {
      const m = /^\/apis\/gitops-gate\.io\/v1alpha1\/(namespaces\/[^/]+\/)?([a-z]+)(\/[^/]+)?(\/status)?$/.exec(r.path);
      if (!m || r.method === 'POST') continue;
      const verb = r.method === 'PATCH' ? 'patch' : m[3] ? 'get' : /(^|&)watch=(true|1)/.test(r.query) ? 'watch' : 'list';
      // Lists and watches go to the cluster-wide path: only a ClusterRoleBinding grants those.
      if (verb === 'list' || verb === 'watch') expect(m[1], r.path).toBeUndefined();
      used.add(`gitops-gate.io|${m[2]}${m[4] ?? ''}|${verb}`);
    }
    expect([...used].sort()).toEqual(
      expect.arrayContaining(['gitops-gate.io|clustergatepolicies/status|patch', 'gitops-gate.io|clustergatepolicies|list', 'gitops-gate.io|gatepolicies/status|patch', 'gitops-gate.io|gatepolicies|list']),
    );
    const role = one(renderOverlay('production'), 'ClusterRole', 'gitops-gate-gate');
    for (const u of used) expect(grants(role.rules), u).toContain(u);
    expect(find(renderOverlay('production'), 'RoleBinding')).toEqual([]);
  });
});
