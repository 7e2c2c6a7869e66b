/**
 * NetworkPolicies: default deny, then exactly the flows the services need.
 */
import { describe, expect, it } from 'vitest';
import { connectionAllowed, egressAllowed, ingressAllowed, selects, type Pod } from './lib/netpol.js';
import { deploymentName, find, NAMESPACE, one, OVERLAYS, podTemplates, renderOverlay, SERVICES, type K8sObject } from './lib/render.js';

const podOf = (docs: K8sObject[], workload: string, kind = 'Deployment'): Pod => ({
  namespace: NAMESPACE,
  labels: one(docs, kind, workload).spec.template.metadata.labels,
});

const INGRESS_CONTROLLER: Pod = { namespace: 'ingress-nginx', labels: { 'app.kubernetes.io/name': 'ingress-nginx' } };
const PROMETHEUS: Pod = { namespace: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } };
const KUBE_DNS: Pod = { namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } };
const KEDA: Pod = { namespace: 'keda', labels: { app: 'keda-operator' } };
const STRANGER_HERE: Pod = { namespace: NAMESPACE, labels: { run: 'debug' } };
const STRANGER_ELSEWHERE: Pod = { namespace: 'default', labels: { 'app.kubernetes.io/name': 'ingress-nginx' } };
const GITHUB = { ip: '140.82.112.3' };
const API_SERVER = { ip: '10.0.0.1' };
const EXTERNAL_REDIS = { ip: '10.20.30.40' };

describe.each(OVERLAYS)('NetworkPolicies (%s)', (overlay) => {
  const docs = () => renderOverlay(overlay);
  const svc = (s: (typeof SERVICES)[number]) => podOf(docs(), deploymentName(s));

  it('deny all ingress and egress by default', () => {
    const deny = one(docs(), 'NetworkPolicy', 'default-deny-all');
    expect(deny.spec.podSelector).toEqual({});
    expect(deny.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.spec.ingress).toBeUndefined();
    expect(deny.spec.egress).toBeUndefined();
  });

  it('exist for each pod (beyond the default deny and DNS)', () => {
    const specific = find(docs(), 'NetworkPolicy').filter((p) => Object.keys(p.spec.podSelector).length > 0);
    for (const { owner, template } of podTemplates(docs())) {
      const mine = specific.filter((p) => selects(p.spec.podSelector, template.metadata.labels));
      expect(mine.length, `${owner.kind}/${owner.metadata.name}`).toBeGreaterThan(0);
    }
  });

  it('let webhooks in to the receiver only from the ingress controller, on 8080', () => {
    const receiver = svc('receiver');
    expect(ingressAllowed(docs(), receiver, INGRESS_CONTROLLER, { port: 8080 })).toBe(true);
    expect(ingressAllowed(docs(), receiver, INGRESS_CONTROLLER, { port: 9090 })).toBe(false);
    expect(ingressAllowed(docs(), receiver, STRANGER_HERE, { port: 8080 })).toBe(false);
    expect(ingressAllowed(docs(), receiver, STRANGER_ELSEWHERE, { port: 8080 })).toBe(false);
    for (const s of ['verifier', 'gate'] as const) {
      expect(ingressAllowed(docs(), svc(s), INGRESS_CONTROLLER, { port: 8080 }), s).toBe(false);
      expect(ingressAllowed(docs(), svc(s), INGRESS_CONTROLLER, { port: s === 'gate' ? 8081 : 9090 }), s).toBe(false);
    }
  });

  it('let Prometheus scrape each service on its metrics port', () => {
    expect(ingressAllowed(docs(), svc('receiver'), PROMETHEUS, { port: 8080 })).toBe(true);
    expect(ingressAllowed(docs(), svc('verifier'), PROMETHEUS, { port: 9090 })).toBe(true);
    expect(ingressAllowed(docs(), svc('gate'), PROMETHEUS, { port: 8081 })).toBe(true);
  });

  it('let every pod resolve names, and nothing else to kube-system', () => {
    for (const { owner, template } of podTemplates(docs())) {
      const pod: Pod = { namespace: NAMESPACE, labels: template.metadata.labels };
      expect(egressAllowed(docs(), pod, KUBE_DNS, { port: 53, protocol: 'UDP' }), owner.metadata.name).toBe(true);
      expect(egressAllowed(docs(), pod, KUBE_DNS, { port: 53, protocol: 'TCP' }), owner.metadata.name).toBe(true);
    }
    expect(egressAllowed(docs(), svc('receiver'), KUBE_DNS, { port: 443 })).toBe(false);
  });

  it('let the verifier out on 443 (git, registries, Rekor) and nothing else to the internet', () => {
    expect(egressAllowed(docs(), svc('verifier'), GITHUB, { port: 443 })).toBe(true);
    expect(egressAllowed(docs(), svc('verifier'), GITHUB, { port: 22 })).toBe(false);
    expect(egressAllowed(docs(), svc('verifier'), GITHUB, { port: 80 })).toBe(false);
    expect(egressAllowed(docs(), svc('receiver'), GITHUB, { port: 443 })).toBe(false);
  });

  it('let the gate reach the Kubernetes API', () => {
    expect(egressAllowed(docs(), svc('gate'), API_SERVER, { port: 443 })).toBe(true);
    expect(egressAllowed(docs(), svc('gate'), API_SERVER, { port: 6443 })).toBe(true);
    expect(egressAllowed(docs(), svc('gate'), API_SERVER, { port: 80 })).toBe(false);
    for (const s of ['receiver'] as const) expect(egressAllowed(docs(), svc(s), API_SERVER, { port: 6443 }), s).toBe(false);
    expect(egressAllowed(docs(), svc('verifier'), API_SERVER, { port: 6443 })).toBe(false);
  });
});

describe('Redis reachability', () => {
  it('dev: all three services and KEDA reach the Redis pod; nothing else does, and Redis reaches nothing', () => {
    const docs = renderOverlay('dev');
    const redis = podOf(docs, 'redis', 'StatefulSet');
    for (const s of SERVICES) expect(connectionAllowed(docs, podOf(docs, deploymentName(s)), redis, { port: 6379 }), s).toBe(true);
    expect(ingressAllowed(docs, redis, KEDA, { port: 6379 })).toBe(true);
    expect(connectionAllowed(docs, STRANGER_HERE, redis, { port: 6379 })).toBe(false);
    expect(ingressAllowed(docs, redis, INGRESS_CONTROLLER, { port: 6379 })).toBe(false);
    expect(egressAllowed(docs, redis, GITHUB, { port: 443 })).toBe(false);
  });

  it('production: all three services reach the external Redis (plain or TLS port), on nothing else', () => {
    const docs = renderOverlay('production');
    for (const s of SERVICES) {
      const pod = podOf(docs, deploymentName(s));
      expect(egressAllowed(docs, pod, EXTERNAL_REDIS, { port: 6379 }), s).toBe(true);
      expect(egressAllowed(docs, pod, EXTERNAL_REDIS, { port: 6380 }), s).toBe(true);
      expect(egressAllowed(docs, pod, EXTERNAL_REDIS, { port: 5432 }), s).toBe(false);
    }
  });
});
