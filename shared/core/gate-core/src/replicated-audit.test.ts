import { describe, expect, it } from 'vitest';
import type { AuditTrail, DecisionRecord } from './audit.js';
import { withReplicatedRecords } from './replicated-audit.js';

describe('withReplicatedRecords', () => {
  const stored: string[] = [];
  const audit = {
    async record(input: { app: string }) {
      stored.push(input.app);
      return { ...input, id: 'x' } as unknown as DecisionRecord;
    },
    has: async () => true,
  } as unknown as AuditTrail;

  it('resolves only after the wait, and fails (so the pin is not acknowledged) when the replicas do not confirm', async () => {
    const order: string[] = [];
    const ok = withReplicatedRecords(audit, async () => void order.push('wait'));
    await ok.record({ app: 'ns/a' } as Parameters<AuditTrail['record']>[0]).then(() => order.push('acknowledged'));
    expect(order).toEqual(['wait', 'acknowledged']);
    const failing = withReplicatedRecords(audit, async () => {
      throw new Error('write reached 0 of 1 replicas');
    });
    await expect(failing.record({ app: 'ns/b' } as Parameters<AuditTrail['record']>[0])).rejects.toThrow(/replicas/);
    // The record was written first (the retry finds it or records the pin again): nothing is skipped.
    expect(stored).toEqual(['ns/a', 'ns/b']);
    expect(await failing.has('x')).toBe(true);
  });
});
