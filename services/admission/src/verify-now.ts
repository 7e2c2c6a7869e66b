/**
 * ADMISSION_NO_VERDICT=verify: a digest without a stored result is verified while the review waits. The verifiers' own
 * image path (registry fetch, signatures, provenance) is queued like a registry_package delivery; the gate stores the
 * verdict, and the review waits for it, bounded well under the webhook's timeout.
 */
import { createHash } from 'node:crypto';
import { normalizeRepoUrl, verifyJobId, type VerifyImageJob } from '@gitops-gate/contracts';
import type { StoredImageResult } from '@gitops-gate/gate-core';
import type { verifyJobOptions } from '@gitops-gate/queue';
import type { AdmissionPolicy } from './decide.js';

type JobsOptions = ReturnType<typeof verifyJobOptions>;

export interface VerifyNowDeps {
  policies: () => AdmissionPolicy[];
  queue: { add(name: 'image', data: VerifyImageJob, opts: JobsOptions): Promise<unknown> };
  lookup: (builds: string[]) => Promise<Map<string, StoredImageResult[]>>;
  /** How long a review waits for the verdicts (ADMISSION_VERIFY_WAIT_MS). */
  waitMs: number;
  /** Job options (attempts, retention) for the queued verifications. */
  jobOptions: JobsOptions;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** One job per digest and policy generation: concurrent reviews of the same new digest share it. */
export function admissionDeliveryId(build: string, p: Pick<AdmissionPolicy, 'identity'>): string {
  const key = `${build} ${p.identity.uid ?? p.identity.name}@${p.identity.generation ?? 0}`;
  return `admission-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

/**
 * Queues a verification of each build (`image@digest`) for every policy with a rule for its image, then polls the
 * stored results until every build has one or the deadline passes. It never decides: the caller looks the results
 * up again, so a verdict still missing stays NO_VERDICT (refused). A queue that cannot be reached throws: the review
 * fails and the API server's failurePolicy Fail refuses the write.
 */
export function createVerifyNow(deps: VerifyNowDeps): (builds: string[]) => Promise<void> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const pollMs = deps.pollMs ?? 100;
  return async (builds) => {
    const deadline = now() + deps.waitMs;
    for (const build of builds) {
      const at = build.lastIndexOf('@');
      const image = build.slice(0, at);
      for (const p of deps.policies().filter((x) => x.images.includes(image))) {
        const repoUrl = normalizeRepoUrl(p.repository);
        const deliveryId = admissionDeliveryId(build, p);
        const job: VerifyImageJob = {
          v: 1,
          kind: 'image',
          deliveryId,
          repoUrl,
          repoFullName: new URL(repoUrl).pathname.slice(1),
          image,
          digest: build.slice(at + 1),
          tags: [],
          receivedAt: new Date(now()).toISOString(),
          trace: undefined,
        };
        await deps.queue.add(job.kind, job, { ...deps.jobOptions, jobId: verifyJobId(deliveryId) });
      }
    }
    while (now() < deadline) {
      const found = await deps.lookup(builds);
      if ([...found.values()].every((r) => r.length > 0)) return;
      await sleep(pollMs);
    }
  };
}
