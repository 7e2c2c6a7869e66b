import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@gitops-gate/telemetry';
import { createGateMetrics } from './gate-metrics.js';

describe('createGateMetrics', () => {
  it('counts decisions by action and conflicts, under the names dashboards and alerts use', async () => {
    const registry = createMetricsRegistry('gate');
    const m = createGateMetrics(registry);
    m.decision('pin');
    m.decision('pin');
    m.decision('refuse-unsigned');
    m.conflict();
    const text = await registry.metrics();
    expect(text).toMatch(/gitops_gate_decisions_total\{action="pin"[^}]*\} 2/);
    expect(text).toMatch(/gitops_gate_decisions_total\{action="refuse-unsigned"[^}]*\} 1/);
    expect(text).toMatch(/gitops_gate_kube_conflicts_total(\{[^}]*\})? 1/);
  });
});
