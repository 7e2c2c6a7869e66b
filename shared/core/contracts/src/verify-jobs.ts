/**
 * Every verify job is built here: the receiver's (a push or package delivery), the gate's re-verifications (policies
 * changed) and the reconciler's (a head no delivery announced). One builder means one strict reading of the
 * repository name and one schema check before anything reaches the queue, instead of each caller deriving
 * `repoFullName` with its own regex.
 * (A subpath export, @gitops-gate/contracts/verify-jobs: it imports the schemas, so the index does not re-export it.)
 */
import { createHash } from 'node:crypto';
import { BaseError } from './errors.js';
import {
  normalizeRepoUrl,
  repoTag,
  verifyCommitJob,
  verifyImageJob,
  verifyJobId,
  type VerifyCommitJob,
  type VerifyImageJob,
} from './index.js';

export const CONTRACT_ERROR_CODES = ['REPO_NAME_INVALID'] as const;
export type ContractErrorCode = (typeof CONTRACT_ERROR_CODES)[number];
export class ContractError extends BaseError<ContractErrorCode> {}

export interface RepoFullName {
  owner: string;
  name: string;
  /** `owner/name`, exactly as given (GitHub compares case-insensitively; normalizeRepoUrl decides identity). */
  fullName: string;
}

// GitHub's rules: an owner is 1–39 ASCII letters, digits or inner hyphens; a repository name 1–100 ASCII letters,
// digits, '.', '_' or '-', and never '.' or '..'. Anything else (paths, spaces, unicode look-alikes, control
// characters) is refused rather than cleaned: a name that needs cleaning did not come from GitHub.
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$/;
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

/** Parses `owner/name` strictly; throws ContractError REPO_NAME_INVALID otherwise. */
export function parseRepoFullName(input: string): RepoFullName {
  const parts = input.split('/');
  const [owner, name] = parts;
  if (
    parts.length !== 2 ||
    owner === undefined ||
    name === undefined ||
    !OWNER.test(owner) ||
    !NAME.test(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new ContractError('REPO_NAME_INVALID', `not a repository full name (owner/name): ${JSON.stringify(input.slice(0, 200))}`);
  }
  return { owner, name, fullName: `${owner}/${name}` };
}

/** The `owner/name` of a repository URL of the form https://host/owner/name (after normalisation); throws otherwise. */
export function repoFullNameOf(repoUrl: string): RepoFullName {
  const m = /^https:\/\/[^/]+\/([^/]+\/[^/]+)$/.exec(normalizeRepoUrl(repoUrl));
  if (!m?.[1])
    throw new ContractError('REPO_NAME_INVALID', `repository URL is not https://host/owner/name: ${JSON.stringify(repoUrl.slice(0, 200))}`);
  return parseRepoFullName(m[1]);
}

/** A verify job with its BullMQ job id (ids may not contain ':'). */
export interface VerifyJobRequest<J> {
  data: J;
  jobId: string;
}

export interface CommitJobInput {
  deliveryId: string;
  /** Clone URL (what the verifier fetches); the canonical repoUrl is derived from it unless given. */
  cloneUrl: string;
  repoUrl?: string;
  /** `owner/name` as the delivery named it; derived from repoUrl when absent. Either way parsed strictly. */
  repoFullName?: string;
  branch: string;
  sha: string;
  before?: string;
  forced?: boolean;
  reverify?: string;
  trace?: Record<string, string>;
  receivedAt: Date;
}

/** The one commit-job builder: strict name, canonical URL, schema-checked. */
export function buildCommitVerifyJob(input: CommitJobInput, jobId = verifyJobId(input.deliveryId)): VerifyJobRequest<VerifyCommitJob> {
  const repoUrl = input.repoUrl ?? normalizeRepoUrl(input.cloneUrl);
  const repoFullName = input.repoFullName !== undefined ? parseRepoFullName(input.repoFullName).fullName : repoFullNameOf(repoUrl).fullName;
  const data = verifyCommitJob.parse({
    v: 1,
    kind: 'commit',
    deliveryId: input.deliveryId,
    repoUrl,
    cloneUrl: input.cloneUrl,
    repoFullName,
    branch: input.branch,
    sha: input.sha,
    ...(input.before !== undefined ? { before: input.before } : {}),
    forced: input.forced ?? false,
    receivedAt: input.receivedAt.toISOString(),
    ...(input.reverify !== undefined ? { reverify: input.reverify } : {}),
    ...(input.trace !== undefined ? { trace: input.trace } : {}),
  });
  return { data, jobId };
}

export interface ImageJobInput {
  deliveryId: string;
  repoUrl: string;
  repoFullName?: string;
  image: string;
  digest: string;
  tags?: string[];
  receivedAt: Date;
}

/** The one image-job builder. */
export function buildImageVerifyJob(input: ImageJobInput, jobId = verifyJobId(input.deliveryId)): VerifyJobRequest<VerifyImageJob> {
  const repoUrl = normalizeRepoUrl(input.repoUrl);
  const repoFullName = input.repoFullName !== undefined ? parseRepoFullName(input.repoFullName).fullName : repoFullNameOf(repoUrl).fullName;
  const data = verifyImageJob.parse({
    v: 1,
    kind: 'image',
    deliveryId: input.deliveryId,
    repoUrl,
    repoFullName,
    image: input.image,
    digest: input.digest,
    tags: input.tags ?? [],
    receivedAt: input.receivedAt.toISOString(),
  });
  return { data, jobId };
}

/** The gate asks again for a commit because the policies changed: one job per (delivery, sha, policy revision). */
export function reverifyCommitJob(
  verdict: Pick<VerifyCommitJob, 'deliveryId' | 'repoUrl' | 'cloneUrl' | 'repoFullName' | 'branch' | 'sha' | 'trace'>,
  revision: string,
  now: Date,
): VerifyJobRequest<VerifyCommitJob> {
  return buildCommitVerifyJob(
    { ...verdict, reverify: revision, receivedAt: now },
    // The repository is in the id: a delivery id is sender-chosen, and two repositories' verdicts for one delivery id
    // and commit must not share one request (BullMQ drops an add whose id it still keeps).
    `reverify-${verdict.deliveryId}-${repoTag(verdict.repoUrl)}-${verdict.sha}-${revision}`,
  );
}

/**
 * The gate asks again for an image: one request per (repository, image name, digest, policy revision), so a still-stale
 * result does not loop, and neither another repository requiring the same digest nor a mirror of it under another name
 * takes this request's place.
 */
export function reverifyImageJob(
  build: { repoUrl: string; image: string; digest: string },
  revision: string,
  now: Date,
): VerifyJobRequest<VerifyImageJob> {
  const name = createHash('sha256').update(build.image).digest('hex').slice(0, 12);
  const id = `${repoTag(build.repoUrl)}-${name}-${build.digest.slice(7, 23)}-${revision}`;
  return buildImageVerifyJob(
    { deliveryId: `reverify-${id}`, repoUrl: build.repoUrl, image: build.image, digest: build.digest, receivedAt: now },
    `reverify-image-${id}`,
  );
}
