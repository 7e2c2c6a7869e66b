// One commit verify job: only a followed repository is fetched (from the gate's URL), the branch proof and the
// signature checks run, and the verdict — verified, rejected or deferred — goes to the gate queue.
import { commitVerdictJob, verdictJobId, type CommitVerdictJob, type FollowedRepo, type VerifyCommitJob } from '@gitops-gate/contracts';
import { isRetryableVerdictCode, isTransientVerdictCode, type CommitVerdict } from '@gitops-gate/commit-verify';
import type { PolicyEvaluation } from '@gitops-gate/policy';
import { GitError } from '@gitops-gate/git';
import { createGateJobOptions, TransientError } from '@gitops-gate/queue';
import { inSpan, injectTrace } from '@gitops-gate/telemetry';
import { FollowedSetMissingError, type VerifyContext } from './verify-context.js';

/** What the checks of one commit found, before it becomes a verdict job. */
interface CommitCheck {
  verdict: CommitVerdict;
  results: PolicyEvaluation['results'];
  ancestors: string[];
  /** Set when transient trouble outlasted the retries: the verdict is `deferred` with this cause. */
  deferred?: { code: string; reason: string };
  proof?: { head: string | null; onBranch: boolean };
}

/**
 * Fetch errors worth another try. A commit missing right after a push is usually one the git host has not replicated
 * yet, so it is retried too; if it is still missing after the last attempt it is deferred, not refused.
 */
function transientFetch(err: GitError): boolean {
  return err.transient || err.code === 'GIT_COMMIT_NOT_FOUND';
}

export async function processCommit(c: VerifyContext, job: VerifyCommitJob, lastAttempt: boolean): Promise<CommitVerdictJob | null> {
  // Where to fetch is the gate's decision (the repositories opted-in Applications name), never the payload's.
  const repo = await c.deps.followed(job.repoUrl);
  if (repo === undefined) throw new FollowedSetMissingError();
  if (repo === null) {
    // Nobody follows it: no fetch, no verdict, no retry (a webhook-secret holder cannot make the verifier fetch).
    c.metrics.notFollowed.inc();
    c.deps.logger.info({ deliveryId: job.deliveryId, repo: job.repoUrl, sha: job.sha }, 'repository not followed: job dropped');
    return null;
  }
  return inSpan(
    'verify.commit',
    { 'git.sha': job.sha, 'git.branch': job.branch, 'github.delivery': job.deliveryId },
    () => verifyInSpan(c, job, repo, lastAttempt),
    job.trace,
  );
}

async function verifyInSpan(c: VerifyContext, job: VerifyCommitJob, repo: FollowedRepo, lastAttempt: boolean): Promise<CommitVerdictJob> {
  const started = process.hrtime.bigint();
  const check = await checkCommit(c, job, repo, lastAttempt);
  // A policy result that depends on something unavailable (Rekor) is no verdict yet: retry the whole job (the
  // results that are final come from the verdict cache), and defer on the last attempt. A Rekor entry not listed
  // yet is retried too, but is a final rejection after the last attempt.
  const retry = check.results.map((r) => r.verdict).find((v) => !v.ok && isRetryableVerdictCode(v.code));
  if (retry && !retry.ok) {
    if (!lastAttempt) throw new TransientError(retry.code, retry.reason);
    if (isTransientVerdictCode(retry.code)) check.deferred = { code: retry.code, reason: retry.reason };
  }
  c.metrics.seconds.observe({ method: check.verdict.method }, Number(process.hrtime.bigint() - started) / 1e9);
  const out = commitVerdictOf(c, job, repo, check);
  c.metrics.verdicts.inc({ kind: 'commit', method: out.method, outcome: out.outcome });
  c.deps.logger.info(
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
  await c.deps.gateQueue.add(out.kind, out, { ...createGateJobOptions(c.deps.completedJobSeconds), jobId: verdictJobId(job) });
  return out;
}

/** Fetch, branch proof, signature and policies; a final git error becomes a rejected (or deferred) verdict. */
async function checkCommit(c: VerifyContext, job: VerifyCommitJob, repo: FollowedRepo, lastAttempt: boolean): Promise<CommitCheck> {
  const { deps } = c;
  const url = repo.fetchUrl;
  let proof: CommitCheck['proof'];
  // Kept when a later step fails: the verdict then names the git error, the policies still show what they found.
  let results: CommitCheck['results'] = [];
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
    const checked = await inSpan('signature.verify', {}, async (span) => {
      const out = await deps.verifyCommit(raw, job);
      span.setAttribute('verify.method', out.verdict.method);
      span.setAttribute('verify.ok', out.verdict.ok);
      return out;
    });
    const verdict = checked.verdict;
    results = checked.results;
    // Only for verified commits: what the gate needs to move forward without a fetch of its own.
    const depth = deps.historyDepth ?? 256;
    const ancestors = verdict.ok && depth > 0 ? await deps.mirror.recentAncestors(url, job.sha, depth) : [];
    return { verdict, results, ancestors, ...(proof ? { proof } : {}) };
  } catch (err) {
    // Anything but a git error (Redis, a bug) is retried as before; a transient git error too while attempts remain.
    if (!(err instanceof GitError) || (transientFetch(err) && !lastAttempt)) throw err;
    return {
      verdict: { ok: false, method: 'none', code: err.code, reason: err.message, policy: '-', sha: job.sha },
      results,
      ancestors: [],
      ...(transientFetch(err) ? { deferred: { code: err.code, reason: err.message } } : {}),
      ...(proof ? { proof } : {}),
    };
  }
}

/** The verdict job the gate receives (validated against the contract). */
function commitVerdictOf(c: VerifyContext, job: VerifyCommitJob, repo: FollowedRepo, check: CommitCheck): CommitVerdictJob {
  const { verdict, results, deferred, proof } = check;
  return commitVerdictJob.parse({
    v: 1,
    kind: 'commit-verdict',
    deliveryId: job.deliveryId,
    repoUrl: repo.repoUrl,
    // What was fetched: the gate's own ancestry checks use the same followed URL.
    cloneUrl: repo.fetchUrl,
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
    verifiedAt: c.now().toISOString(),
    reverify: job.reverify,
    ancestors: check.ancestors,
    ...(proof ? { branchHead: proof.head, onBranch: proof.onBranch } : {}),
    trace: injectTrace() ?? job.trace,
  });
}
