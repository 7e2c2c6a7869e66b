// One image verify job: the image checker's result (or a deferral after transient registry trouble outlasted the
// retries) becomes an image verdict on the gate queue.
import { imageVerdictJob, imageVerdictJobId, type ImageVerdictJob, type VerifyImageJob } from '@gitops-gate/contracts';
import { createGateJobOptions } from '@gitops-gate/queue';
import { injectTrace } from '@gitops-gate/telemetry';
import type { ImageCheckerFn } from './checks.js';
import type { VerifyContext } from './verify-context.js';

/** Errors other packages mark as transient (`transient: true`, e.g. the OCI client's registry 5xx/429/network). */
function markedTransient(err: unknown): err is Error & { code?: unknown } {
  return err instanceof Error && (err as { transient?: unknown }).transient === true;
}

export async function processImage(c: VerifyContext, job: VerifyImageJob, lastAttempt: boolean): Promise<ImageVerdictJob> {
  const { deps } = c;
  const started = process.hrtime.bigint();
  // Transient registry trouble throws (retried; on the last attempt: deferred, never a rejection); everything else is
  // a verdict.
  let result: Awaited<ReturnType<ImageCheckerFn>> & { deferred?: boolean };
  try {
    result = deps.verifyImage
      ? await deps.verifyImage(job)
      : {
          image: job.image,
          digest: job.digest,
          ok: false,
          code: 'IMAGE_VERIFICATION_DISABLED',
          reason: 'this verifier has no image verification configured',
        };
  } catch (err) {
    if (!markedTransient(err) || !lastAttempt) throw err;
    const code = typeof err.code === 'string' ? err.code : 'REGISTRY_UNAVAILABLE';
    result = { image: job.image, digest: job.digest, ok: false, code, reason: err.message, deferred: true };
  }
  c.metrics.seconds.observe({ method: 'image' }, Number(process.hrtime.bigint() - started) / 1e9);
  const out = imageVerdictJob.parse({
    v: 1,
    kind: 'image-verdict',
    deliveryId: job.deliveryId,
    repoUrl: job.repoUrl,
    verifiedAt: c.now().toISOString(),
    trace: injectTrace() ?? job.trace,
    ...result,
  });
  c.metrics.verdicts.inc({ kind: 'image', method: 'sigstore', outcome: out.deferred ? 'deferred' : out.ok ? 'verified' : 'rejected' });
  deps.logger.info(
    { deliveryId: job.deliveryId, image: job.image, digest: job.digest, ok: out.ok, code: out.code, sourceCommit: out.sourceCommit },
    'image verdict',
  );
  await deps.gateQueue.add(out.kind, out, {
    ...createGateJobOptions(deps.completedJobSeconds),
    jobId: imageVerdictJobId(job.deliveryId, job.digest, job.repoUrl),
  });
  return out;
}
