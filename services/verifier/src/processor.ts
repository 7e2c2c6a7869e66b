/**
 * What a verifier does with one job. Verdicts, accept or reject, are results: the job completes and the verdict goes
 * to the gate. Transient trouble (git host unreachable, a commit not fetchable yet right after a push, Rekor or a
 * registry unavailable) throws, so BullMQ retries it with backoff; on the job's last attempt it becomes a `deferred`
 * verdict naming the cause — never a final rejection, which reconcile would count as covering the commit.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { UnrecoverableError, type Job, type Queue } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';
import {
  commitVerdictJob,
  imageVerdictJob,
  imageVerdictJobId,
  verdictJobId,
  verifyJob,
  type CommitVerdictJob,
  type FollowedRepo,
  type ImageVerdictJob,
  type VerifyCommitJob,
  type VerifyImageJob,
} from '@gitops-gate/contracts';
import type { CommitVerifierFn, ImageCheckerFn } from './checks.js';
import { isRetryableVerdictCode, isTransientVerdictCode, type CommitVerdict } from '@gitops-gate/commit-verify';
import { type PolicyEvaluation } from '@gitops-gate/policy';
import { GitError, type GitMirror } from '@gitops-gate/git';
import { createGateJobOptions, TransientError } from '@gitops-gate/queue';
import { inSpan, injectTrace, type Logger } from '@gitops-gate/telemetry';

export interface VerifierDeps {
  mirror: GitMirror;
  verifyCommit: CommitVerifierFn;
  /** Image signature/provenance verification; without it image jobs get a rejected verdict. */
  verifyImage?: ImageCheckerFn;
  gateQueue: Queue;
  logger: Logger;
  registry: Registry;
  now?: () => Date;
  /** How long completed gate jobs are kept (COMPLETED_JOB_RETENTION_SECONDS; default an hour). */
  completedJobSeconds?: number;
  /** How much history a verified commit's verdict carries for the gate's ancestry check (default 256; 0 = none). */
  historyDepth?: number;
  /**
   * The gate's followed repository for a repository URL (null: not followed; undefined: the gate has not published
   * the set yet). The verifier fetches only followed repositories, from their `fetchUrl`, never the job's cloneUrl.
   */
  followed: (repoUrl: string) => Promise<FollowedRepo | null | undefined>;
}

/** The set is not published yet (no gate has run): transient, so the job waits for it with backoff. */
export class FollowedSetMissingError extends BaseError<'FOLLOWED_SET_MISSING'> {
  readonly transient = true;
  constructor() {
    super('FOLLOWED_SET_MISSING', 'the gate has not published the followed repositories yet');
  }
}

/** Whether BullMQ runs the job again if it throws now (as BullMQ decides it: attempts counts the first run). */
function hasAttemptsLeft(job: Job): boolean {
  return job.attemptsMade + 1 < (job.opts?.attempts ?? 1);
}

/**
 * Fetch errors worth another try. A commit missing right after a push is usually one the git host has not replicated
 * yet, so it is retried too; if it is still missing after the last attempt it is deferred, not refused.
 */
function transientFetch(err: GitError): boolean {
  return err.transient || err.code === 'GIT_COMMIT_NOT_FOUND';
}

/** Errors other packages mark as transient (`transient: true`, e.g. the OCI client's registry 5xx/429/network). */
function markedTransient(err: unknown): err is Error & { code?: unknown } {
  return err instanceof Error && (err as { transient?: unknown }).transient === true;
}

export function createVerifyProcessor(deps: VerifierDeps): (job: Job) => Promise<unknown> {
  const now = deps.now ?? (() => new Date());
  const verdicts = new Counter({
    name: 'gitops_gate_verdicts_total',
    help: 'Verification verdicts by kind, method and outcome',
    labelNames: ['kind', 'method', 'outcome'] as const,
    registers: [deps.registry],
  });
  const seconds = new Histogram({
    name: 'gitops_gate_verification_seconds',
    help: 'Time to verify one job (fetch + signature), by method',
    labelNames: ['method'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [deps.registry],
  });
  const notFollowed = new Counter({
    name: 'gitops_gate_verify_not_followed_total',
    help: 'Commit jobs dropped without a fetch because no opted-in Application follows the repository',
    registers: [deps.registry],
  });

  async function processCommit(job: VerifyCommitJob, lastAttempt: boolean): Promise<CommitVerdictJob | null> {
    // Where to fetch is the gate's decision (the repositories opted-in Applications name), never the payload's.
    const repo = await deps.followed(job.repoUrl);
    if (repo === undefined) throw new FollowedSetMissingError();
    if (repo === null) {
      // Nobody follows it: no fetch, no verdict, no retry (a webhook-secret holder cannot make the verifier fetch).
      notFollowed.inc();
      deps.logger.info({ deliveryId: job.deliveryId, repo: job.repoUrl, sha: job.sha }, 'repository not followed: job dropped');
      return null;
    }
    return inSpan(
      'verify.commit',
      { 'git.sha': job.sha, 'git.branch': job.branch, 'github.delivery': job.deliveryId },
      () => verifyInSpan(job, repo, lastAttempt),
      job.trace,
    );
  }

  async function verifyInSpan(job: VerifyCommitJob, repo: FollowedRepo, lastAttempt: boolean): Promise<CommitVerdictJob> {
    const started = process.hrtime.bigint();
    let verdict: CommitVerdict;
    let results: PolicyEvaluation['results'] = [];
    let ancestors: string[] = [];
    /** Set when transient trouble outlasted the retries: the verdict is `deferred` with this cause. */
    let deferred: { code: string; reason: string } | undefined;
    let proof: { head: string | null; onBranch: boolean } | undefined;
    const url = repo.fetchUrl;
    try {
      // Refused (host outside the credential scope): a verdict, so the gate records why its Applications stay put.
      if (repo.refused) throw new GitError('GIT_HOST_NOT_ALLOWED', repo.refused, false);
      // The webhook's ref is a claim: the remote's branch, read now, must contain the commit (Audit pins need it too).
      // First: the branch fetch brings a commit that is on it, so the read below needs no fetch of its own.
      // A read of the branch that started after the webhook arrived is as good as one of this job's own: jobs for one
      // branch in flight together share it (one fetch per batch of pushes, none for a job whose branch was just read).
      const receivedAt = Date.parse(job.receivedAt);
      const freshSince = Number.isFinite(receivedAt) ? receivedAt : undefined;
      proof = await inSpan('git.fetch', { 'git.sha': job.sha, 'git.branch': job.branch }, () =>
        deps.mirror.proveOnBranch(url, job.sha, job.branch, { freshSince }),
      );
      const raw = await deps.mirror.readCommit(url, job.sha);
      ({ verdict, results } = await inSpan('signature.verify', {}, async (span) => {
        const out = await deps.verifyCommit(raw, job);
        span.setAttribute('verify.method', out.verdict.method);
        span.setAttribute('verify.ok', out.verdict.ok);
        return out;
      }));
      // Only for verified commits: what the gate needs to move forward without a fetch of its own.
      const depth = deps.historyDepth ?? 256;
      if (verdict.ok && depth > 0) ancestors = await deps.mirror.recentAncestors(url, job.sha, depth);
    } catch (err) {
      // Anything but a git error (Redis, a bug) is retried as before; a transient git error too while attempts remain.
      if (!(err instanceof GitError) || (transientFetch(err) && !lastAttempt)) throw err;
      if (transientFetch(err)) deferred = { code: err.code, reason: err.message };
      verdict = { ok: false, method: 'none', code: err.code, reason: err.message, policy: '-', sha: job.sha };
    }
    // A policy result that depends on something unavailable (Rekor) is no verdict yet: retry the whole job (the
    // results that are final come from the verdict cache), and defer on the last attempt. A Rekor entry not listed
    // yet is retried too, but is a final rejection after the last attempt.
    const retry = results.map((r) => r.verdict).find((v) => !v.ok && isRetryableVerdictCode(v.code));
    if (retry && !retry.ok) {
      if (!lastAttempt) throw new TransientError(retry.code, retry.reason);
      if (isTransientVerdictCode(retry.code)) deferred = { code: retry.code, reason: retry.reason };
    }
    seconds.observe({ method: verdict.method }, Number(process.hrtime.bigint() - started) / 1e9);
    const out: CommitVerdictJob = commitVerdictJob.parse({
      v: 1,
      kind: 'commit-verdict',
      deliveryId: job.deliveryId,
      repoUrl: repo.repoUrl,
      // What was fetched: the gate's own ancestry checks use the same followed URL.
      cloneUrl: url,
      repoFullName: job.repoFullName,
      branch: job.branch,
      sha: job.sha,
      outcome: deferred ? 'deferred' : verdict.ok ? 'verified' : 'rejected',
      method: verdict.method,
      signer: verdict.ok ? verdict.signer : undefined,
      code: deferred ? deferred.code : verdict.ok ? 'VERIFIED' : verdict.code,
      reasons: deferred ? [deferred.reason] : verdict.ok ? verdict.evidence : [verdict.reason],
      rule: verdict.policy,
      policies: results.map((r) => ({
        name: r.policy,
        scope: r.scope,
        namespace: r.namespace,
        uid: r.uid,
        generation: r.generation,
        mode: r.mode,
        selector: r.selector,
        ok: r.verdict.ok,
        code: r.verdict.ok ? 'VERIFIED' : r.verdict.code,
        reason: r.verdict.ok ? undefined : r.verdict.reason,
        signer: r.verdict.ok ? r.verdict.signer.identity : undefined,
      })),
      verifiedAt: now().toISOString(),
      reverify: job.reverify,
      ancestors,
      ...(proof ? { branchHead: proof.head, onBranch: proof.onBranch } : {}),
      trace: injectTrace() ?? job.trace,
    });
    verdicts.inc({ kind: 'commit', method: out.method, outcome: out.outcome });
    deps.logger.info(
      {
        deliveryId: job.deliveryId,
        repo: job.repoFullName,
        branch: job.branch,
        sha: job.sha,
        outcome: out.outcome,
        method: out.method,
        code: out.code,
        signer: out.signer?.identity,
        onBranch: out.onBranch,
      },
      'commit verdict',
    );
    // The verdict job id is derived from delivery and sha, so a retried verify job never emits two verdicts.
    await deps.gateQueue.add(out.kind, out, {
      ...createGateJobOptions(deps.completedJobSeconds),
      jobId: verdictJobId(job.deliveryId, job.sha, job.repoUrl, job.reverify),
    });
    return out;
  }

  return async (job: Job) => {
    const parsed = verifyJob.safeParse(job.data);
    if (!parsed.success) {
      // A job that does not match the contract will not match it on retry either.
      deps.logger.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 3) }, 'malformed verify job');
      throw new UnrecoverableError(`malformed verify job: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    const data = parsed.data;
    const lastAttempt = !hasAttemptsLeft(job);
    if (data.kind === 'commit') return processCommit(data, lastAttempt);
    return inSpan(
      'verify.image',
      { 'oci.image': data.image, 'oci.digest': data.digest, 'github.delivery': data.deliveryId },
      () => processImage(data, lastAttempt),
      data.trace,
    );
  };

  async function processImage(job: VerifyImageJob, lastAttempt: boolean): Promise<ImageVerdictJob> {
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
    seconds.observe({ method: 'image' }, Number(process.hrtime.bigint() - started) / 1e9);
    const out = imageVerdictJob.parse({
      v: 1,
      kind: 'image-verdict',
      deliveryId: job.deliveryId,
      repoUrl: job.repoUrl,
      verifiedAt: now().toISOString(),
      trace: injectTrace() ?? job.trace,
      ...result,
    });
    verdicts.inc({ kind: 'image', method: 'sigstore', outcome: out.deferred ? 'deferred' : out.ok ? 'verified' : 'rejected' });
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
}
