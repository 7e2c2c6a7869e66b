/**
 * The gate's HTTP surface on one Fastify app: the shared ops routes (/healthz, /readyz, /metrics), the audit API
 * (/api/decisions) and the read-only pages (/ui). main.ts listens on it; ops-app.test.ts injects into it.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { ApplicationStore, AuditTrail } from '@gitops-gate/gate-core';
import { createOpsApp, type Readiness } from '@gitops-gate/telemetry';
import { createAuditRoutes } from './audit-routes.js';
import { createUiRoutes, type UiDeps } from './ui/index.js';

export interface GateOpsDeps {
  registry: Registry;
  ready: () => Promise<Readiness>;
  audit: AuditTrail;
  store: ApplicationStore;
  namespaces: string[];
  auditKey?: string;
  ui?: Partial<Pick<UiDeps, 'basePath' | 'now'>>;
}

export function createGateOpsApp(deps: GateOpsDeps): FastifyInstance {
  return createOpsApp({
    registry: deps.registry,
    ready: deps.ready,
    plugins: [
      createAuditRoutes(deps.audit),
      createUiRoutes({ audit: deps.audit, store: deps.store, namespaces: deps.namespaces, auditKey: deps.auditKey, ...deps.ui }),
    ],
  });
}
