import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createBundleTrust, createBundleVerifier } from '@gitops-gate/bundle-verify';
import type { CompiledPolicy } from '@gitops-gate/commit-verify';
import { normalizeRepoUrl, type ImageVerdictJob, type VerifyImageJob } from '@gitops-gate/contracts';
import { COSTLY_REJECTIONS, createImageVerifier, createRegistryClient, type ImageVerifierOptions, type RegistryCredential } from '@gitops-gate/oci';
import type { PolicySource } from './commit-checker.js';

export type ImageCheckerFn = (
  job: VerifyImageJob,
) => Promise<Omit<ImageVerdictJob, 'v' | 'kind' | 'deliveryId' | 'repoUrl' | 'verifiedAt' | 'trace' | 'policies'> & Partial<Pick<ImageVerdictJob, 'policies'>>>;

/** The image requirement for `image` among the policies that govern its repository (any branch). */
export function requirementFor(policies: CompiledPolicy[], repoUrl: string, image: string): { policy: CompiledPolicy; requirement: CompiledPolicy['images'][number] } | undefined {
  const repo = normalizeRepoUrl(repoUrl);
  for (const policy of policies) {
    if (policy.repository !== '*' && normalizeRepoUrl(policy.repository) !== repo) continue;
    const requirement = policy.images.find((r) => r.repository.toLowerCase() === image.toLowerCase());
    if (requirement) return { policy, requirement };
  }
  return undefined;
}

/**
 * Verifies a published image against the image requirement of the policies governing its repository. Trust material
 * and the registry client (token cache) are built once. No requirement for the image = a rejection: nothing is
 * trusted by default.
 */
export function createImageChecker(opts: {
  policies: PolicySource;
  trustedRoot?: object;
  credentials: Record<string, RegistryCredential>;
  insecureHosts: string[];
  /** Registry host → mirror host (air-gapped installs, tests): the image is fetched from the mirror. */
  mirrors?: Record<string, string>;
  /** Registry host → token-service origins that may receive its credentials (REGISTRY_TOKEN_REALMS). */
  tokenRealms?: Record<string, string[]>;
  /** Per-job byte budget, signature blob cap and deadline (IMAGE_* config). */
  limits?: Pick<ImageVerifierOptions, 'maxImageBytes' | 'maxSignatureBytes' | 'deadlineMs'>;
  /**
   * Verdict cache shared by replicas. Only passing verdicts are cached: a digest is immutable, but its signatures and
   * attestations can still be published after a rejection ("not signed yet" must not stick).
   */
  cache?: { redis: Redis; prefix: string; ttlSeconds?: number; onLookup?: (hit: boolean) => void; rejectionTtlSeconds?: number };
}): ImageCheckerFn {
  const trustRevision = createHash('sha256').update(JSON.stringify(opts.trustedRoot ?? null)).digest('hex');
  const mirrorOf = (image: string): string => {
    const slash = image.indexOf('/');
    const host = image.slice(0, slash);
    const to = opts.mirrors?.[host];
    return to ? `${to}${image.slice(slash)}` : image;
  };
  const verifier = createImageVerifier({
    registry: createRegistryClient({ credentials: opts.credentials, insecureHosts: opts.insecureHosts, ...(opts.tokenRealms ? { tokenRealms: opts.tokenRealms } : {}) }),
    bundleVerifier: createBundleVerifier(createBundleTrust(opts.trustedRoot)),
    ...opts.limits,
  });
  return async (job) => {
    const found = requirementFor(await opts.policies.current(), job.repoUrl, job.image);
    if (!found) {
      return { image: job.image, digest: job.digest, ok: false, code: 'NO_IMAGE_POLICY', reason: `no policy for ${job.repoUrl} lists image ${job.image}` };
    }
    const cacheKey = opts.cache
      ? `${opts.cache.prefix}:image-verdict-cache:${createHash('sha256').update(JSON.stringify([job.image, job.digest, found.policy.name, found.requirement, trustRevision])).digest('hex')}`
      : undefined;
    if (opts.cache && cacheKey) {
      const hit = await opts.cache.redis.get(cacheKey).catch(() => null);
      opts.cache.onLookup?.(hit !== null);
      if (hit) return JSON.parse(hit) as Awaited<ReturnType<ImageCheckerFn>>;
    }
    const fetchFrom = mirrorOf(job.image);
    // The policy names the image as published; a mirror serves the same digests under another name.
    const v = await verifier.verifyImage({
      image: fetchFrom,
      digest: job.digest,
      requirement: { ...found.requirement, repository: fetchFrom },
      // Provenance must name this repository and one of the policy's branches, not only the commit SHA.
      source: { repository: job.repoUrl, branches: found.policy.branches },
    });
    const result = {
      image: job.image,
      digest: job.digest,
      ok: v.ok,
      code: v.ok ? 'VERIFIED' : (v.code ?? 'IMAGE_REJECTED'),
      reason: v.reason,
      sourceCommit: v.sourceCommit,
      builder: v.provenance?.builderId,
      signer: v.provenance?.signerIdentity ?? v.signatures.find((s) => s.ok)?.signer?.identity,
      policy: found.policy.name,
    };
    // Costly rejections (budget, deadline) are remembered for a while too: otherwise every package event for the
    // digest would make a verifier read the whole budget again.
    const ttl = v.ok ? (opts.cache?.ttlSeconds ?? 7 * 24 * 3600) : COSTLY_REJECTIONS.has(result.code) ? (opts.cache?.rejectionTtlSeconds ?? 600) : undefined;
    if (ttl !== undefined && opts.cache && cacheKey) await opts.cache.redis.set(cacheKey, JSON.stringify(result), 'EX', ttl).catch(() => undefined);
    return result;
  };
}
