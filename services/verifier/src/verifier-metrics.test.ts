import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '@gitops-gate/telemetry';
import { createVerifierMetrics } from './verifier-metrics.js';

describe('createVerifierMetrics', () => {
  it('counts cache lookups by kind and result, and reads coalescing at scrape time', async () => {
    const registry = createMetricsRegistry('verifier');
    const m = createVerifierMetrics(registry);
    const c = { verified: 0, coalesced: 0 };
    m.watchCoalescing(() => c);
    m.cacheLookup('commit', true);
    m.cacheLookup('commit', false);
    m.cacheLookup('image', false);
    m.cacheLookup('image', false);
    c.verified = 3;
    c.coalesced = 2;
    const text = await registry.metrics();
    expect(text).toMatch(/gitops_gate_verdict_cache_lookups_total\{kind="commit",result="hit"[^}]*\} 1/);
    expect(text).toMatch(/gitops_gate_verdict_cache_lookups_total\{kind="image",result="miss"[^}]*\} 2/);
    expect(text).toMatch(/gitops_gate_commit_verifications\{result="verified"[^}]*\} 3/);
    expect(text).toMatch(/gitops_gate_commit_verifications\{result="coalesced"[^}]*\} 2/);
  });
});
