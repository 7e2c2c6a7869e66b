/**
 * Turns a verified GitHub delivery into at most one verify job. Pure: no I/O, so every row of the event table is a
 * unit test. Payload schemas are the subset of GitHub's payloads the pipeline relies on; a payload missing them is a
 * 400 naming the field (GitHub never sends one, so it is a forgery with a leaked secret or a misconfigured proxy).
 */
import { z } from 'zod';
import type { VerifyJob } from '@gitops-gate/contracts';
import { buildCommitVerifyJob, buildImageVerifyJob, ContractError, parseRepoFullName } from '@gitops-gate/contracts/verify-jobs';

const ZERO_SHA = /^0+$/;

function isRepoFullName(s: string): boolean {
  try {
    parseRepoFullName(s);
    return true;
  } catch {
    return false;
  }
}
const sha = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'must be a full hex commit SHA');

const repository = z.object({
  full_name: z.string().refine(isRepoFullName, 'must be owner/name'),
  clone_url: z.string().min(1),
  html_url: z.string().min(1).optional(),
});

// Git refuses control characters in ref names and GitHub caps them at 255 bytes; anything else is not from GitHub.
// eslint-disable-next-line no-control-regex -- the rule is the point: refs with control characters are refused.
const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]+$/;
const refName = z.string().min(1).max(255).regex(NO_CONTROL_CHARACTERS, 'must be a git ref name (no control characters)');

const pushPayload = z.object({
  ref: refName,
  before: z.string(),
  after: sha,
  deleted: z.boolean().optional(),
  forced: z.boolean().optional(),
  repository,
});

const packageVersion = z.object({
  version: z.string().optional(),
  package_url: z.string().optional(),
  container_metadata: z.object({ tag: z.object({ name: z.string().optional(), digest: z.string().optional() }).nullish() }).nullish(),
});

const packageBody = z.object({
  name: z.string().min(1),
  namespace: z.string().optional(),
  package_type: z.string(),
  owner: z.object({ login: z.string() }).optional(),
  package_version: packageVersion.nullish(),
  registry: z.object({ url: z.string().optional() }).nullish(),
});

const packagePayload = z.object({
  action: z.string(),
  package: packageBody,
  repository,
});
const registryPackagePayload = z.object({
  action: z.string(),
  registry_package: packageBody,
  repository,
});

export type EventOutcome =
  { kind: 'ping' } | { kind: 'enqueue'; job: VerifyJob } | { kind: 'ignore'; reason: string } | { kind: 'invalid'; message: string };

function describeIssues(event: string, err: z.ZodError): string {
  const first = err.issues[0];
  const where = first && first.path.length > 0 ? first.path.join('.') : '(root)';
  return `${event} payload invalid at ${where}: ${first?.message ?? 'unexpected shape'}`;
}

/** Builds the job with the one builder (contracts/verify-jobs); what it refuses is an invalid delivery, not a crash. */
function enqueue(build: () => VerifyJob): EventOutcome {
  try {
    return { kind: 'enqueue', job: build() };
  } catch (err) {
    if (err instanceof z.ZodError) return { kind: 'invalid', message: describeIssues('job', err) };
    if (err instanceof ContractError) return { kind: 'invalid', message: err.message };
    throw err;
  }
}

export function interpretEvent(event: string, deliveryId: string, payload: unknown, now: Date): EventOutcome {
  if (event === 'ping') return { kind: 'ping' };
  if (event === 'push') {
    const parsed = pushPayload.safeParse(payload);
    if (!parsed.success) return { kind: 'invalid', message: describeIssues(event, parsed.error) };
    const p = parsed.data;
    if (p.ref.startsWith('refs/tags/')) return { kind: 'ignore', reason: 'tag push: Applications follow branches, tags are not pinned' };
    if (!p.ref.startsWith('refs/heads/')) return { kind: 'ignore', reason: `push to ${p.ref}: not a branch` };
    if (p.deleted === true || ZERO_SHA.test(p.after)) {
      return { kind: 'ignore', reason: 'branch deleted: Applications stay on their last verified commit' };
    }
    return enqueue(
      () =>
        buildCommitVerifyJob({
          deliveryId,
          cloneUrl: p.repository.clone_url,
          repoFullName: p.repository.full_name,
          branch: p.ref.slice('refs/heads/'.length),
          sha: p.after,
          before: p.before,
          forced: p.forced ?? false,
          receivedAt: now,
        }).data,
    );
  }
  if (event === 'package' || event === 'registry_package') {
    const parsed = (event === 'package' ? packagePayload : registryPackagePayload).safeParse(payload);
    if (!parsed.success) return { kind: 'invalid', message: describeIssues(event, parsed.error) };
    const data = parsed.data;
    const pkg = 'package' in data ? data.package : data.registry_package;
    if (data.action !== 'published' && data.action !== 'updated')
      return { kind: 'ignore', reason: `package ${data.action}: only published versions are verified` };
    if (!['container', 'docker', 'CONTAINER', 'DOCKER'].includes(pkg.package_type)) {
      return { kind: 'ignore', reason: `package type ${pkg.package_type}: only container images are verified` };
    }
    const v = pkg.package_version;
    const digest = [v?.container_metadata?.tag?.digest, v?.version].find((d) => d && /^sha256:[0-9a-f]{64}$/.test(d));
    if (!digest) return { kind: 'invalid', message: `${event} payload invalid at package_version: no sha256 image digest` };
    const owner = (pkg.namespace ?? pkg.owner?.login ?? data.repository.full_name.split('/')[0] ?? '').toLowerCase();
    const image = `ghcr.io/${owner}/${pkg.name.toLowerCase()}`;
    const tag = v?.container_metadata?.tag?.name;
    return enqueue(
      () =>
        buildImageVerifyJob({
          deliveryId,
          repoUrl: data.repository.clone_url,
          repoFullName: data.repository.full_name,
          image,
          digest,
          tags: tag ? [tag] : [],
          receivedAt: now,
        }).data,
    );
  }
  return { kind: 'ignore', reason: `event ${event} is not used` };
}
