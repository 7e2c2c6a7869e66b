import { Writable } from 'node:stream';
import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { AppOutcome, Gate } from '@gitops-gate/gate-core';
import { checkRunFor, reportJobFromRecord } from '@gitops-gate/github';
import { createLogger } from '@gitops-gate/telemetry';
import { createGateProcessor } from './processor.js';

const silent = createLogger('gate-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const SHA = 'd'.repeat(40);
const verdict = {
  v: 1,
  kind: 'commit-verdict',
  deliveryId: 'd1',
  repoUrl: 'https://github.com/org/app',
  cloneUrl: 'https://github.com/org/app.git',
  repoFullName: 'org/app',
  branch: 'main',
  sha: SHA,
  outcome: 'verified',
  method: 'ssh',
  signer: { identity: 'dev@example.com' },
  code: 'VERIFIED',
  reasons: [],
  rule: 'test',
  verifiedAt: new Date().toISOString(),
  onBranch: true,
  branchHead: SHA,
  policies: [],
};
const record = (action: string) => ({
  id: `rec-${action}`,
  time: new Date().toISOString(),
  deliveryId: 'd1',
  repo: 'https://github.com/org/app',
  branch: 'main',
  sha: SHA,
  app: 'argocd/web',
  action,
  reason: 'r',
  verdict: { outcome: 'verified', method: 'ssh', code: 'VERIFIED', signer: 'dev@example.com', reasons: [] },
  prevHash: '',
  hash: '',
});

describe('gate processor reporting hook', () => {
  it('hands the recorded decisions to the reporter after the gate decided; waits become in_progress check runs', async () => {
    const order: string[] = [];
    const outcomes: AppOutcome[] = [
      { app: 'argocd/web', action: 'wait-images', reason: 'r', record: record('wait-images') },
      { app: 'argocd/api', action: 'not-found', reason: 'gone' },
    ];
    const gate = { applyVerdict: async () => (order.push('decided'), outcomes) } as unknown as Gate;
    let seen: AppOutcome[] = [];
    const run = createGateProcessor(gate, silent, async (o) => {
      order.push('reported');
      seen = o;
    });
    expect(await run({ id: '1', data: verdict } as unknown as Job)).toBe(outcomes);
    expect(order).toEqual(['decided', 'reported']);
    const jobs = seen.flatMap((o) => (o.record ? [reportJobFromRecord(o.record)!] : []));
    expect(jobs).toHaveLength(1);
    expect(checkRunFor(jobs[0]!)).toMatchObject({ status: 'in_progress', name: 'gitops-gate / argocd/web' });
  });

  it('without a reporter (no GitHub credentials) it decides as before', async () => {
    const gate = { applyVerdict: async () => [] } as unknown as Gate;
    expect(await createGateProcessor(gate, silent)({ id: '1', data: verdict } as unknown as Job)).toEqual([]);
  });
});
