import { describe, expect, it } from 'vitest';
import type { ReportEnqueuer, ReportJob } from '@gitops-gate/github';
import { createOutcomeReporter } from './outcome-reports.js';
import { capturingLogger } from './test-logs.js';

const SHA = 'e'.repeat(40);
const record = (id: string) => ({
  id,
  time: new Date().toISOString(),
  repo: 'https://github.com/org/app',
  sha: SHA,
  app: 'argocd/web',
  action: 'pin',
  reason: 'verified',
  verdict: { code: 'VERIFIED', method: 'ssh', signer: 'dev@example.com' },
});

function queue(fail = false): ReportEnqueuer & { jobs: ReportJob[] } {
  const jobs: ReportJob[] = [];
  return {
    jobs,
    enqueue: (job) => (fail ? Promise.reject(new Error('redis down')) : (jobs.push(job), Promise.resolve())),
    close: () => Promise.resolve(),
  };
}

describe('createOutcomeReporter', () => {
  it('queues one report per recorded decision, by decision id, and skips outcomes without a record', async () => {
    const q = queue();
    await createOutcomeReporter(q, capturingLogger().logger)([{ record: record('r1') }, {}, { record: record('r2') }]);
    expect(q.jobs.map((j) => j.decisionId)).toEqual(['r1', 'r2']);
  });

  it('reporting off (no GitHub client): nothing queued, nothing thrown', async () => {
    await expect(createOutcomeReporter(undefined, capturingLogger().logger)([{ record: record('r1') }])).resolves.toBeUndefined();
  });

  it('a failed enqueue is logged, never thrown: a lost report must not fail (and retry) the gate job', async () => {
    const { logger, lines } = capturingLogger();
    await expect(createOutcomeReporter(queue(true), logger)([{ record: record('r1') }, { record: record('r2') }])).resolves.toBeUndefined();
    expect(lines.filter((l) => l.msg === 'GitHub report not queued').map((l) => l.decisionId)).toEqual(['r1', 'r2']);
  });
});
