import { describe, expect, it } from 'vitest';
import { COMPLETED_JOBS_KEPT, compactResult, createGateJobOptions, gateJobOptions, verifyJobOptions } from './index.js';

describe('job retention options', () => {
  it('keeps completed jobs an hour by default, never more than 10 000 per queue', () => {
    expect(verifyJobOptions(604_800).removeOnComplete).toEqual({ age: 3600, count: COMPLETED_JOBS_KEPT });
    expect(gateJobOptions.removeOnComplete).toEqual({ age: 3600, count: COMPLETED_JOBS_KEPT });
    expect(COMPLETED_JOBS_KEPT).toBe(10_000);
  });

  it('takes COMPLETED_JOB_RETENTION_SECONDS for completed jobs only: failed jobs keep their own retention', () => {
    const verify = verifyJobOptions(300, 120);
    expect(verify.removeOnComplete).toEqual({ age: 120, count: COMPLETED_JOBS_KEPT });
    expect(verify.removeOnFail).toEqual({ age: 300 });
    const gate = createGateJobOptions(120);
    expect(gate.removeOnComplete).toEqual({ age: 120, count: COMPLETED_JOBS_KEPT });
    expect(gate.removeOnFail).toEqual({ age: 7 * 24 * 3600 });
  });
});

describe('compactResult', () => {
  it('keeps top-level strings, numbers and booleans of a job result, drops histories and nested objects', () => {
    const verdict = {
      v: 1,
      sha: 'a'.repeat(40),
      outcome: 'verified',
      onBranch: true,
      ancestors: Array.from({ length: 256 }, (_, i) => String(i).padStart(40, '0')),
      signer: { identity: 'dev@example.com' },
      code: 'x'.repeat(500),
    };
    const small = compactResult(verdict);
    expect(small).toEqual({ v: 1, sha: 'a'.repeat(40), outcome: 'verified', onBranch: true, code: 'x'.repeat(200) });
    expect(JSON.stringify(small).length).toBeLessThan(JSON.stringify(verdict).length / 10);
    expect(compactResult(null)).toBeNull();
    expect(compactResult(undefined)).toBeUndefined();
    expect(compactResult([1, 2])).toBeNull();
    expect(compactResult('y'.repeat(300))).toBe('y'.repeat(200));
  });
});
