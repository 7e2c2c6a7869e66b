import { Counter, type Registry } from 'prom-client';

/** The gate's decision metrics: decisions by action, and writes lost to a concurrent change of the Application. */
export function createGateMetrics(registry: Registry): { decision: (action: string) => void; conflict: () => void } {
  const decisions = new Counter({
    name: 'gitops_gate_decisions_total',
    help: 'Gate decisions by action',
    labelNames: ['action'] as const,
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'gitops_gate_kube_conflicts_total',
    help: 'Application writes refused because the object changed since it was read (409, or 422 from a failed precondition)',
    registers: [registry],
  });
  return { decision: (action) => decisions.inc({ action }), conflict: () => conflicts.inc() };
}
