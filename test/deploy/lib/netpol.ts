/**
 * A small NetworkPolicy evaluator (networking.k8s.io/v1 semantics) for asking "may this pod talk to that peer on
 * that port?" of rendered manifests. Named ports are not resolved (we only use numbers).
 */
import type { K8sObject } from './render.js';

export type Labels = Record<string, string>;
export type Pod = { namespace: string; namespaceLabels?: Labels; labels: Labels };
export type Peer = Pod | { ip: string };
export type Traffic = { port: number; protocol?: 'TCP' | 'UDP' };

type Selector = { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values?: string[] }[] };

export function selects(selector: Selector | undefined, labels: Labels): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok =
      e.operator === 'In' ? has && (e.values ?? []).includes(labels[e.key]!)
      : e.operator === 'NotIn' ? !has || !(e.values ?? []).includes(labels[e.key]!)
      : e.operator === 'Exists' ? has
      : e.operator === 'DoesNotExist' ? !has
      : false;
    if (!ok) return false;
  }
  return true;
}

function ipv4(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  if (ip.includes(':') || cidr.includes(':')) return false;
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base!) / size);
}

const nsLabels = (p: Pod): Labels => ({ 'kubernetes.io/metadata.name': p.namespace, ...(p.namespaceLabels ?? {}) });

type PolicyPeer = { podSelector?: Selector; namespaceSelector?: Selector; ipBlock?: { cidr: string; except?: string[] } };

function peerMatches(rulePeer: PolicyPeer, policyNamespace: string, peer: Peer): boolean {
  if ('ip' in peer) {
    if (!rulePeer.ipBlock) return false;
    return inCidr(peer.ip, rulePeer.ipBlock.cidr) && !(rulePeer.ipBlock.except ?? []).some((c) => inCidr(peer.ip, c));
  }
  if (rulePeer.ipBlock) return false; // pod IPs in ipBlocks are not modelled
  const nsOk = rulePeer.namespaceSelector ? selects(rulePeer.namespaceSelector, nsLabels(peer)) : peer.namespace === policyNamespace;
  return nsOk && selects(rulePeer.podSelector, peer.labels);
}

function portMatches(ports: { port?: number | string; protocol?: string; endPort?: number }[] | undefined, t: Traffic): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some(
    (p) =>
      (p.protocol ?? 'TCP') === (t.protocol ?? 'TCP') &&
      (p.port === undefined || p.port === t.port || (typeof p.port === 'number' && p.endPort !== undefined && t.port >= p.port && t.port <= p.endPort)),
  );
}

function policiesFor(docs: K8sObject[], pod: Pod, type: 'Ingress' | 'Egress'): K8sObject[] {
  return docs.filter(
    (d) =>
      d.kind === 'NetworkPolicy' &&
      d.metadata.namespace === pod.namespace &&
      selects(d.spec.podSelector, pod.labels) &&
      (d.spec.policyTypes ?? ['Ingress']).includes(type),
  );
}

/** Isolated pods only get what some selecting policy allows; non-isolated pods get everything. */
export function egressAllowed(docs: K8sObject[], from: Pod, to: Peer, t: Traffic): boolean {
  const policies = policiesFor(docs, from, 'Egress');
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.spec.egress ?? []).some(
      (r: { to?: PolicyPeer[]; ports?: [] }) =>
        portMatches(r.ports, t) && (!r.to || r.to.length === 0 || r.to.some((x) => peerMatches(x, p.metadata.namespace!, to))),
    ),
  );
}

export function ingressAllowed(docs: K8sObject[], to: Pod, from: Peer, t: Traffic): boolean {
  const policies = policiesFor(docs, to, 'Ingress');
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (p.spec.ingress ?? []).some(
      (r: { from?: PolicyPeer[]; ports?: [] }) =>
        portMatches(r.ports, t) && (!r.from || r.from.length === 0 || r.from.some((x) => peerMatches(x, p.metadata.namespace!, from))),
    ),
  );
}

/** A connection needs both the sender's egress and the receiver's ingress (for pods we ship). */
export function connectionAllowed(docs: K8sObject[], from: Pod, to: Pod, t: Traffic): boolean {
  return egressAllowed(docs, from, to, t) && ingressAllowed(docs, to, from, t);
}
