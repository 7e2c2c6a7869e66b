import { describe, expect, it, vi } from 'vitest';
import type { VerifyImageJob } from '@gitops-gate/contracts';
import type { StoredImageResult } from '@gitops-gate/gate-core';
import type { AdmissionPolicy } from './decide.js';
import { admissionDeliveryId, createVerifyNow } from './verify-now.js';

const DIGEST = `sha256:${'c'.repeat(64)}`;
const BUILD = `ghcr.io/org/app@${DIGEST}`;
const policy = (name: string, generation: number, images = ['ghcr.io/org/app']): AdmissionPolicy => ({
  identity: { name, uid: `uid-${name}`, generation } as AdmissionPolicy['identity'],
  mode: 'Enforce',
  selector: {},
  repository: 'https://github.com/org/app',
  images,
  requirePinnedCommit: false,
});
const stored = { ok: true } as unknown as StoredImageResult;

function setup(opts: { policies: AdmissionPolicy[]; resultAfterPolls?: number; queueDown?: boolean; waitMs?: number }) {
  const clock = { t: 1_000_000 };
  const added: { data: VerifyImageJob; jobId: string | undefined }[] = [];
  let polls = 0;
  const lookup = vi.fn((builds: string[]) => {
    polls += 1;
    const have = opts.resultAfterPolls !== undefined && polls > opts.resultAfterPolls;
    return Promise.resolve(new Map(builds.map((b) => [b, have ? [stored] : []])));
  });
  const verifyNow = createVerifyNow({
    policies: () => opts.policies,
    queue: {
      add: (_name, data, o) =>
        opts.queueDown ? Promise.reject(new Error('redis down')) : (added.push({ data, jobId: o.jobId }), Promise.resolve()),
    },
    lookup,
    waitMs: opts.waitMs ?? 1_000,
    jobOptions: { attempts: 8 },
    now: () => clock.t,
    sleep: (ms) => ((clock.t += ms), Promise.resolve()),
  });
  return { verifyNow, added, lookup, clock };
}

describe('createVerifyNow', () => {
  it('one job per digest and policy generation, for policies with a rule for the image only', async () => {
    const { verifyNow, added } = setup({
      policies: [policy('a', 1), policy('b', 1), policy('other', 1, ['ghcr.io/org/x'])],
      resultAfterPolls: 0,
    });
    await verifyNow([BUILD]);
    await verifyNow([BUILD]);
    expect(added).toHaveLength(4);
    // The same review repeated (or a concurrent one) gets the same job ids: shared, not queued twice.
    expect(added[0]?.jobId).toBe(added[2]?.jobId);
    expect(added[0]?.jobId).not.toBe(added[1]?.jobId);
    expect(added[0]?.data).toMatchObject({
      kind: 'image',
      image: 'ghcr.io/org/app',
      digest: DIGEST,
      repoUrl: 'https://github.com/org/app',
      repoFullName: 'org/app',
    });
  });

  it('a new policy generation is a new job (a verdict under the old rules does not stand in)', () => {
    expect(admissionDeliveryId(BUILD, policy('a', 1))).not.toBe(admissionDeliveryId(BUILD, policy('a', 2)));
    expect(admissionDeliveryId(BUILD, policy('a', 1))).not.toBe(
      admissionDeliveryId(`ghcr.io/org/app@sha256:${'d'.repeat(64)}`, policy('a', 1)),
    );
  });

  it('returns as soon as every build has a stored result', async () => {
    const { verifyNow, lookup } = setup({ policies: [policy('a', 1)], resultAfterPolls: 2 });
    await verifyNow([BUILD]);
    expect(lookup).toHaveBeenCalledTimes(3);
  });

  it('respects the deadline: with no verdict it stops polling at waitMs and returns without deciding', async () => {
    const { verifyNow, lookup, clock } = setup({ policies: [policy('a', 1)], waitMs: 1_000 });
    const start = clock.t;
    await verifyNow([BUILD]);
    expect(clock.t - start).toBe(1_000);
    expect(lookup).toHaveBeenCalledTimes(10);
  });

  it('fails closed when the queue is down: the review errors (failurePolicy Fail refuses), no waiting', async () => {
    const { verifyNow, lookup } = setup({ policies: [policy('a', 1)], queueDown: true });
    await expect(verifyNow([BUILD])).rejects.toThrow('redis down');
    expect(lookup).not.toHaveBeenCalled();
  });
});
