// One policy rule's outcome for one image digest: from the shared verdict cache, from a registry walk another
// policy with the same rule already started in this job, or from a walk of its own (via a mirror when configured).
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CompiledPolicy } from '@gitops-gate/policy';
import { policyKey, type PolicyIdentity, type VerifyImageJob } from '@gitops-gate/contracts';
import { COSTLY_REJECTIONS, type createImageVerifier } from '@gitops-gate/oci';

export type ImageRule = CompiledPolicy['images'][number];

/** One policy's outcome for one image digest, as cached. */
export interface RuleOutcome {
  ok: boolean;
  code: string;
  reason?: string;
  sourceCommit?: string;
  builder?: string;
  signer?: string;
}

export interface ImageVerdictCacheOptions {
  redis: Redis;
  prefix: string;
  ttlSeconds?: number;
  onLookup?: (hit: boolean) => void;
  rejectionTtlSeconds?: number;
}

/** What an outcome needs, built once per checker. */
export interface RuleOutcomeDeps {
  verifier: ReturnType<typeof createImageVerifier>;
  /** Hash of the trusted root: a cached outcome never outlives the trust it was computed under. */
  trustRevision: string;
  /** Registry host → mirror host. */
  mirrors?: Record<string, string>;
  cache?: ImageVerdictCacheOptions;
}

function mirrorOf(d: RuleOutcomeDeps, image: string): string {
  const slash = image.indexOf('/');
  const host = image.slice(0, slash);
  const to = d.mirrors?.[host];
  return to ? `${to}${image.slice(slash)}` : image;
}

export async function outcomeUnder(
  d: RuleOutcomeDeps,
  job: VerifyImageJob,
  id: PolicyIdentity,
  requirement: ImageRule,
  branches: string[],
  byRule: Map<string, Promise<RuleOutcome>>,
): Promise<RuleOutcome> {
  // The cache key names the policy object at its generation: a result never outlives the policy it was computed under.
  const cacheKey = d.cache
    ? `${d.cache.prefix}:image-verdict-cache:${createHash('sha256')
        .update(JSON.stringify([job.image, job.digest, policyKey(id), requirement, d.trustRevision]))
        .digest('hex')}`
    : undefined;
  if (d.cache && cacheKey) {
    const hit = await d.cache.redis.get(cacheKey).catch(() => null);
    d.cache.onLookup?.(hit !== null);
    if (hit) return JSON.parse(hit) as RuleOutcome;
  }
  const rule = JSON.stringify([requirement, branches]);
  let pending = byRule.get(rule);
  if (!pending) {
    pending = verify(d, job, requirement, branches);
    byRule.set(rule, pending);
  }
  const outcome = await pending;
  // Costly rejections (budget, deadline) are remembered for a while too: otherwise every package event for the
  // digest would make a verifier read the whole budget again. Other rejections are never cached.
  const ttl = outcome.ok
    ? (d.cache?.ttlSeconds ?? 7 * 24 * 3600)
    : COSTLY_REJECTIONS.has(outcome.code)
      ? (d.cache?.rejectionTtlSeconds ?? 600)
      : undefined;
  if (ttl !== undefined && d.cache && cacheKey)
    await d.cache.redis.set(cacheKey, JSON.stringify(outcome), 'EX', ttl).catch(() => undefined);
  return outcome;
}

async function verify(d: RuleOutcomeDeps, job: VerifyImageJob, requirement: ImageRule, branches: string[]): Promise<RuleOutcome> {
  const fetchFrom = mirrorOf(d, job.image);
  // The policy names the image as published; a mirror serves the same digests under another name.
  const v = await d.verifier.verifyImage({
    image: fetchFrom,
    digest: job.digest,
    requirement: { ...requirement, repository: fetchFrom },
    // Provenance must name this repository and one of the policy's branches, not only the commit SHA.
    source: { repository: job.repoUrl, branches },
  });
  return {
    ok: v.ok,
    code: v.ok ? 'VERIFIED' : (v.code ?? 'IMAGE_REJECTED'),
    reason: v.reason,
    // Carried on rejections too when the provenance was read: the gate files the result under that commit.
    sourceCommit: v.sourceCommit ?? v.provenance?.sourceCommit,
    builder: v.provenance?.builderId,
    signer: v.provenance?.signerIdentity ?? v.signatures.find((s) => s.ok)?.signer?.identity,
  };
}
