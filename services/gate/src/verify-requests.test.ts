import type { JobsOptions } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { reconcileJob } from '@gitops-gate/gate-core';
import { createVerifyRequests } from './verify-requests.js';
import { capturingLogger } from './test-logs.js';

const SHA = 'a'.repeat(40);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const verdict = {
  deliveryId: 'd1',
  repoUrl: 'https://github.com/org/app',
  cloneUrl: 'https://github.com/org/app.git',
  repoFullName: 'org/app',
  branch: 'main',
  sha: SHA,
  trace: undefined,
};

function setup(revision: () => string) {
  const added: { name: string; data: Record<string, unknown>; opts: JobsOptions }[] = [];
  const requests = createVerifyRequests({
    queue: { add: (name, data, opts) => (added.push({ name, data: data as Record<string, unknown>, opts }), Promise.resolve()) },
    revision,
    retentionSeconds: 600,
    logger: capturingLogger().logger,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  return { requests, added };
}

describe('createVerifyRequests', () => {
  it('a commit is asked again once per policy revision: the same revision gives the same job id (coalesced), a new one another', async () => {
    let rev = 'r1';
    const { requests, added } = setup(() => rev);
    await requests.requestReverify(verdict as never, 'policy changed');
    await requests.requestReverify(verdict as never, 'policy changed');
    rev = 'r2';
    await requests.requestReverify(verdict as never, 'policy changed');
    expect(added.map((a) => a.name)).toEqual(['commit', 'commit', 'commit']);
    expect(added[0]?.opts.jobId).toBe(added[1]?.opts.jobId);
    expect(added[2]?.opts.jobId).not.toBe(added[0]?.opts.jobId);
    expect(added[0]?.data).toMatchObject({ kind: 'commit', sha: SHA, reverify: 'r1' });
    expect(added[0]?.opts).toMatchObject({ attempts: 8, removeOnFail: { age: 600 } });
  });

  it('without a policy watch the revision is "none"; images are asked per digest and revision', async () => {
    const { requests, added } = setup(() => 'none');
    await requests.requestImageReverify({ image: 'ghcr.io/org/app', digest: DIGEST, repoUrl: verdict.repoUrl }, 'stale');
    expect(added[0]?.name).toBe('image');
    expect(added[0]?.opts.jobId).toContain('-none');
    expect(added[0]?.data).toMatchObject({ kind: 'image', image: 'ghcr.io/org/app', digest: DIGEST });
  });

  it('reconcile heads are queued as commit jobs with their own ids', async () => {
    const { requests, added } = setup(() => 'r1');
    const target = { deliveryId: 'reconcile-x', repoUrl: verdict.repoUrl, cloneUrl: verdict.cloneUrl, branch: 'main', sha: SHA };
    await requests.enqueueReconcile(target);
    expect(added[0]).toMatchObject({ name: 'commit', data: { deliveryId: 'reconcile-x', sha: SHA } });
    // The id reconcile's own contract gives that head: a second pass over the same head is not queued twice.
    expect(added[0]?.opts.jobId).toBe(reconcileJob(target).jobId);
  });

  it('a queue failure reaches the caller (the gate job retries rather than losing the request)', async () => {
    const requests = createVerifyRequests({
      queue: { add: () => Promise.reject(new Error('redis down')) },
      revision: () => 'r1',
      retentionSeconds: 600,
      logger: capturingLogger().logger,
    });
    await expect(requests.requestReverify(verdict as never, 'x')).rejects.toThrow('redis down');
  });
});
