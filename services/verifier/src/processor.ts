/**
 * What a verifier does with one job. Verdicts, accept or reject, are results: the job completes and the verdict goes
 * to the gate. Only transient trouble (git fetch, Redis) throws, so BullMQ retries it with backoff.
 */
import { UnrecoverableError, type Job, type Queue } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';
import { commitVerdictJob, imageVerdictJob, verdictJobId, verifyJob, type CommitVerdictJob, type FollowedRepo, type ImageVerdictJob, type VerifyCommitJob, type VerifyImageJob } from '@gitops-gate/contracts';
import type { ImageCheckerFn } from './image-checker.js';
import type { CommitVerdict, PolicyEvaluation } from '@gitops-gate/commit-verify';
import { GitError, type GitMirror } from '@gitops-gate/git';
import { gateJobOptions } from '@gitops-gate/queue';
import { inSpan, injectTrace, type Logger } from '@gitops-gate/telemetry';

export type CommitVerifierFn = (raw: Buffer, job: VerifyCommitJob) => Promise<PolicyEvaluation>;

export interface VerifierDeps {
  mirror: GitMirror;
  verifyCommit: CommitVerifierFn;
  /** Image signature/provenance verification; without it image jobs get a rejected verdict. */
  verifyImage?: ImageCheckerFn;
  gateQueue: Queue;
  logger: Logger;
  registry: Registry;
  now?: () => Date;
  /** How much history a verified commit's verdict carries for the gate's ancestry check (default 256; 0 = none). */
  historyDepth?: number;
  /**
   * The gate's followed repository for a repository URL (null: not followed; undefined: the gate has not published
   * the set yet). The verifier fetches only followed repositories, from their `fetchUrl`, never the job's cloneUrl.
   */
  followed: (repoUrl: string) => Promise<FollowedRepo | null | undefined>;
}

/** The set is not published yet (no gate has run): transient, so the job waits for it with backoff. */
export class FollowedSetMissingError extends Error {
  readonly code = 'FOLLOWED_SET_MISSING';
  readonly transient = true;
  constructor() {
    super('the gate has not published the followed repositories yet');
    this.name = 'FollowedSetMissingError';
  }
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

  async function processCommit(job: VerifyCommitJob): Promise<CommitVerdictJob | null> {
    // Where to fetch is the gate's decision (the repositories opted-in Applications name), never the payload's.
    const repo = await deps.followed(job.repoUrl);
    if (repo === undefined) throw new FollowedSetMissingError();
    if (repo === null) {
      // Nobody follows it: no fetch, no verdict, no retry (a webhook-secret holder cannot make the verifier fetch).
      notFollowed.inc();
      deps.logger.info({ deliveryId: job.deliveryId, repo: job.repoUrl, sha: job.sha }, 'repository not followed: job dropped');
      return null;
    }
    return inSpan('verify.commit', { 'git.sha': job.sha, 'git.branch': job.branch, 'github.delivery': job.deliveryId }, () => verifyInSpan(job, repo), job.trace);
  }

  async function verifyInSpan(job: VerifyCommitJob, repo: FollowedRepo): Promise<CommitVerdictJob> {
    const started = process.hrtime.bigint();
    let verdict: CommitVerdict;
    let results: PolicyEvaluation['results'] = [];
    let ancestors: string[] = [];
    let proof: { head: string | null; onBranch: boolean } | undefined;
    const url = repo.fetchUrl;
    try {
      // Refused (host outside the credential scope): a verdict, so the gate records why its Applications stay put.
      if (repo.refused) throw new GitError('GIT_HOST_NOT_ALLOWED', repo.refused, false);
      // The webhook's ref is a claim: the remote's branch, read now, must contain the commit (Audit pins need it too).
      // First: the branch fetch brings a commit that is on it, so the read below needs no fetch of its own.
      proof = await inSpan('git.fetch', { 'git.sha': job.sha, 'git.branch': job.branch }, () => deps.mirror.proveOnBranch(url, job.sha, job.branch));
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
      if (err instanceof GitError && !err.transient) {
        verdict = { ok: false, method: 'none', code: err.code, reason: err.message, policy: '-', sha: job.sha };
      } else {
        throw err;
      }
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
      outcome: verdict.ok ? 'verified' : 'rejected',
      method: verdict.method,
      signer: verdict.ok ? verdict.signer : undefined,
      code: verdict.ok ? 'VERIFIED' : verdict.code,
      reasons: verdict.ok ? verdict.evidence : [verdict.reason],
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
      { deliveryId: job.deliveryId, repo: job.repoFullName, branch: job.branch, sha: job.sha, outcome: out.outcome, method: out.method, code: out.code, signer: out.signer?.identity, onBranch: out.onBranch },
      'commit verdict',
    );
    // The verdict job id is derived from delivery and sha, so a retried verify job never emits two verdicts.
    await deps.gateQueue.add(out.kind, out, { ...gateJobOptions, jobId: verdictJobId(job.deliveryId, job.sha, job.reverify) });
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
    if (data.kind === 'commit') return processCommit(data);
    return inSpan('verify.image', { 'oci.image': data.image, 'oci.digest': data.digest, 'github.delivery': data.deliveryId }, () => processImage(data), data.trace);
  };

  async function processImage(job: VerifyImageJob): Promise<ImageVerdictJob> {
    const started = process.hrtime.bigint();
    // Transient registry trouble throws (retried); everything else is a verdict.
    const result = deps.verifyImage
      ? await deps.verifyImage(job)
      : { image: job.image, digest: job.digest, ok: false, code: 'IMAGE_VERIFICATION_DISABLED', reason: 'this verifier has no image verification configured' };
    seconds.observe({ method: 'image' }, Number(process.hrtime.bigint() - started) / 1e9);
    const out = imageVerdictJob.parse({
      v: 1, kind: 'image-verdict', deliveryId: job.deliveryId, repoUrl: job.repoUrl, verifiedAt: now().toISOString(), trace: injectTrace() ?? job.trace, ...result,
    });
    verdicts.inc({ kind: 'image', method: 'sigstore', outcome: out.ok ? 'verified' : 'rejected' });
    deps.logger.info({ deliveryId: job.deliveryId, image: job.image, digest: job.digest, ok: out.ok, code: out.code, sourceCommit: out.sourceCommit }, 'image verdict');
    await deps.gateQueue.add(out.kind, out, { ...gateJobOptions, jobId: `image-${job.deliveryId}-${job.digest.slice(7, 23)}` });
    return out;
  }
}
