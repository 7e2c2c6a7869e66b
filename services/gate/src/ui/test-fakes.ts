/**
 * In-memory AuditTrail and ApplicationStore for the page tests, plus a loopback server that runs one route plugin in
 * the gate's real ops app (createOpsApp).
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  KubeError,
  recordHash,
  type Application,
  type ApplicationStore,
  type AuditTrail,
  type DecisionInput,
  type DecisionRecord,
} from '@gitops-gate/gate-core';
import type { FastifyPluginAsync } from 'fastify';
import { Registry } from 'prom-client';
import { createOpsApp } from '@gitops-gate/telemetry';

export function memoryAudit(clock: () => Date = () => new Date()): AuditTrail & { records: DecisionRecord[] } {
  const records: DecisionRecord[] = [];
  const heads = new Map<string, string>();
  return {
    records,
    async record(input: DecisionInput) {
      const base = {
        ...input,
        id: input.id ?? randomUUID(),
        time: clock().toISOString(),
        prevHash: heads.get(input.app) ?? '0'.repeat(64),
      };
      const rec: DecisionRecord = { ...base, hash: recordHash(base) };
      heads.set(rec.app, rec.hash);
      records.push(rec);
      return rec;
    },
    async query(filter = {}) {
      return records
        .filter(
          (r) =>
            (!filter.app || r.app === filter.app) &&
            (!filter.sha || r.sha.startsWith(filter.sha)) &&
            (!filter.since || Date.parse(r.time) >= filter.since.getTime()),
        )
        .reverse()
        .slice(0, filter.limit ?? 100);
    },
    async has(id: string) {
      return records.some((r) => r.id === id);
    },
    async decidedApps(sha: string) {
      return new Set(records.filter((r) => r.sha === sha).map((r) => r.app));
    },
    async verifyChain() {
      return { ok: true, checked: records.length, problems: [] };
    },
    async checkpoints() {
      return new Map<string, string>();
    },
  };
}

export function memoryStore(apps: Application[]): ApplicationStore & { apps: Application[]; fail?: Error } {
  const store: ApplicationStore & { apps: Application[]; fail?: Error } = {
    apps,
    async list(namespaces) {
      if (store.fail) throw store.fail;
      return store.apps.filter((a) => namespaces.length === 0 || namespaces.includes(a.metadata.namespace ?? 'default'));
    },
    async get(namespace, name) {
      if (store.fail) throw store.fail;
      const a = store.apps.find((x) => x.metadata.namespace === namespace && x.metadata.name === name);
      if (!a) throw new KubeError('NOT_FOUND', 404, `get application ${namespace}/${name}: not found`);
      return structuredClone(a);
    },
    async patch() {
      throw new Error('read-only fake');
    },
  };
  return store;
}

/** An Argo CD Application as the API server returns it; `pin` adds what the gate writes when it pins. */
export function application(opts: {
  namespace?: string;
  name: string;
  repoURL?: string;
  branch?: string | null;
  targetRevision?: string;
  pin?: {
    sha: string;
    signer: string;
    method?: string;
    pinnedAt?: string;
    decisionId?: string;
    deliveryId?: string;
    mode?: 'audit' | 'enforce';
  };
}): Application {
  const annotations: Record<string, string> = {};
  if (opts.branch !== null) annotations['gitops-gate.io/branch'] = opts.branch ?? 'main';
  if (opts.pin) {
    Object.assign(annotations, {
      'gitops-gate.io/verified-sha': opts.pin.sha,
      'gitops-gate.io/signer': opts.pin.signer,
      'gitops-gate.io/method': opts.pin.method ?? 'ssh',
      'gitops-gate.io/verified-at': opts.pin.pinnedAt ?? '2025-03-01T10:00:00.000Z',
      'gitops-gate.io/pinned-at': opts.pin.pinnedAt ?? '2025-03-01T10:00:01.000Z',
      'gitops-gate.io/decision-id': opts.pin.decisionId ?? randomUUID(),
      'gitops-gate.io/delivery-id': opts.pin.deliveryId ?? randomUUID(),
      'gitops-gate.io/mode': opts.pin.mode ?? 'enforce',
    });
  }
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { namespace: opts.namespace ?? 'argocd', name: opts.name, resourceVersion: '1', annotations },
    spec: {
      source: {
        repoURL: opts.repoURL ?? 'https://github.com/org/shop.git',
        targetRevision: opts.targetRevision ?? opts.pin?.sha ?? 'main',
        path: '.',
      },
    },
  };
}

export function decision(over: Partial<DecisionInput> & Pick<DecisionInput, 'app' | 'sha' | 'action'>): DecisionInput {
  const verified = !over.action.startsWith('refuse-unverified');
  return {
    deliveryId: randomUUID(),
    repo: 'https://github.com/org/shop',
    branch: 'main',
    reason: over.action === 'pin' ? 'first verified commit pinned' : 'commit not verified: UNSIGNED: no signature',
    verdict: verified
      ? { outcome: 'verified', method: 'ssh', code: 'VERIFIED', signer: 'dev@example.com', reasons: [] }
      : { outcome: 'rejected', method: 'none', code: 'UNSIGNED', reasons: ['commit has no signature'] },
    policy: 'default',
    previousRevision: 'main',
    ...(over.action === 'pin' ? { newRevision: over.sha } : {}),
    ...over,
  };
}

export async function serveRoute(route: FastifyPluginAsync): Promise<{ url: string; close(): Promise<void>; server: Server }> {
  const app = createOpsApp({ registry: new Registry(), ready: async () => true, plugins: [route] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server: app.server,
    close: () => app.close(),
  };
}
