/**
 * The admission backstop component (deploy/optional/admission, + admission-cert-manager): rendered with kubectl
 * kustomize into the production overlay, schema-checked, the webhook's fail-closed settings, and the break-glass
 * label guard evaluated with CEL as the API server would.
 */
import { describe, expect, it } from 'vitest';
import { admitVap, create, update } from './lib/admission.js';
import { NAMESPACE, one, renderWithComponents, type K8sObject } from './lib/render.js';
import { isBuiltIn, schemaErrors, unknownFields } from './lib/schema.js';

const docs = renderWithComponents('production', ['admission', 'admission-cert-manager']);
const PODS = { group: '', version: 'v1', resource: 'pods' };
const DEPLOYMENTS = { group: 'apps', version: 'v1', resource: 'deployments' };
const EXEMPT = { 'gitops-gate.io/admission-exempt': 'true' };

const pod = (labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop', labels }, spec: { containers: [{ name: 'c', image: 'x:1' }] } });
const deployment = (labels: Record<string, string> = {}) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'shop' },
  spec: { selector: { matchLabels: { app: 'd' } }, template: { metadata: { labels: { app: 'd', ...labels } }, spec: { containers: [{ name: 'c', image: 'x:1' }] } } },
});

describe('admission backstop manifests', () => {
  it('validate against the Kubernetes schemas', async () => {
    const problems: string[] = [];
    for (const d of docs.filter((x: K8sObject) => x.metadata.labels?.['app.kubernetes.io/component'] === 'admission' || x.kind === 'ValidatingWebhookConfiguration')) {
      for (const e of await schemaErrors(d)) problems.push(`${d.kind}/${d.metadata.name}: ${e}`);
      if (isBuiltIn(d)) for (const e of unknownFields(d)) problems.push(`${d.kind}/${d.metadata.name}: ${e}`);
    }
    expect(problems).toEqual([]);
  });

  it('fail closed, small timeout, gitops-gate and kube-system excluded, every pod-carrying kind', () => {
    const vwc = one(docs, 'ValidatingWebhookConfiguration', 'gitops-gate-admission');
    const [hook] = vwc.webhooks;
    expect(hook.failurePolicy).toBe('Fail');
    expect(hook.timeoutSeconds).toBeLessThanOrEqual(5);
    expect(hook.sideEffects).toBe('None');
    expect(hook.namespaceSelector.matchExpressions).toEqual([{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE, 'kube-system'] }]);
    const resources = hook.rules.flatMap((r: { resources: string[] }) => r.resources);
    for (const r of ['pods', 'pods/ephemeralcontainers', 'deployments', 'statefulsets', 'daemonsets', 'replicasets', 'jobs', 'cronjobs']) expect(resources).toContain(r);
    expect(hook.clientConfig.service).toMatchObject({ name: 'gitops-gate-admission', namespace: NAMESPACE, path: '/validate' });
    expect(vwc.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(`${NAMESPACE}/gitops-gate-admission`);
  });

  it('serves TLS from the Secret cert-manager issues for the Service name', () => {
    const cert = one(docs, 'Certificate', 'gitops-gate-admission');
    expect(cert.spec.secretName).toBe('gitops-gate-admission-tls');
    expect(cert.spec.dnsNames).toContain(`gitops-gate-admission.${NAMESPACE}.svc`);
    const dep = one(docs, 'Deployment', 'gitops-gate-admission');
    expect(dep.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName).toBe('gitops-gate-admission-tls');
    expect(dep.spec.template.spec.containers[0].args).toEqual(['services/admission/dist/main.js']);
    // Same Redis as the gate: production's URL (with its password) comes from the gitops-gate-redis Secret.
    expect(dep.spec.template.spec.containers[0].env).toContainEqual({ name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'gitops-gate-redis', key: 'url', optional: true } } });
  });

  describe('break-glass label guard', () => {
    const vap = one(docs, 'ValidatingAdmissionPolicy', 'gitops-gate-admission-exemption');
    const admit = (req: ReturnType<typeof create>, resource: typeof PODS, obj: unknown, old: unknown = null) => admitVap(vap, { ...req, resource, namespace: 'shop' }, obj, old);

    it('admins may set the exemption label on a Pod or a pod template', () => {
      expect(admit(create('bob', ['gitops-gate:admins']), PODS, pod(EXEMPT)).allowed).toBe(true);
      expect(admit(create('bob', ['gitops-gate:admins']), DEPLOYMENTS, deployment(EXEMPT)).allowed).toBe(true);
    });

    it('attacker: a developer cannot set it on a Pod, a Deployment template, or keep it through an update', () => {
      expect(admit(create('mallory', ['system:authenticated']), PODS, pod(EXEMPT)).allowed).toBe(false);
      expect(admit(create('mallory'), DEPLOYMENTS, deployment(EXEMPT)).allowed).toBe(false);
      expect(admit(update('mallory'), DEPLOYMENTS, deployment(EXEMPT), deployment(EXEMPT)).allowed).toBe(false);
    });

    it('controllers create Pods from an admin-labelled template; objects without the label are untouched', () => {
      expect(admit(create('system:serviceaccount:kube-system:replicaset-controller'), PODS, pod(EXEMPT)).allowed).toBe(true);
      expect(admit(create('mallory'), PODS, pod()).allowed).toBe(true);
    });
  });
});
