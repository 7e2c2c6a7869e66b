import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createBundleTrust, createBundleVerifier } from '@gitops-gate/bundle-verify';
import type { BundleTrust } from '@gitops-gate/bundle-verify';
import type { CompiledPolicy } from '@gitops-gate/policy';
import { normalizeRepoUrl, policyKey, type PolicyIdentity, type PolicyResult, type VerifyImageJob } from '@gitops-gate/contracts';
import {
  COSTLY_REJECTIONS,
  createImageVerifier,
  createRegistryClient,
  type ImageVerifierOptions,
  type RegistryCredential,
} from '@gitops-gate/oci';
import type { ImageCheckerFn, PolicySource } from './checks.js';

type ImageRule = CompiledPolicy['images'][number];

/** Every policy that governs the image's repository (any branch), with its rule for this image when it has one. */
export function imagePoliciesFor(
  policies: CompiledPolicy[],
  repoUrl: string,
  image: string,
): { policy: CompiledPolicy; requirement?: ImageRule }[] {
  const repo = normalizeRepoUrl(repoUrl);
  return policies
    .filter((p) => p.repository === '*' || normalizeRepoUrl(p.repository) === repo)
    .map((policy) => ({ policy, requirement: policy.images.find((r) => r.repository.toLowerCase() === image.toLowerCase()) }));
}

/** The policy object and generation a result is computed under (scope and uid where the policy source knows them). */
function identityOf(policy: CompiledPolicy): PolicyIdentity {
  const known = policy as CompiledPolicy & Partial<Pick<PolicyIdentity, 'scope' | 'uid'>>;
  return {
    name: policy.name,
    scope: known.scope ?? 'Namespaced',
    namespace: policy.namespace,
    uid: known.uid,
    generation: policy.generation,
  };
}

/** One policy's outcome for one image digest, as cached. */
interface RuleOutcome {
  ok: boolean;
  code: string;
  reason?: string;
  sourceCommit?: string;
  builder?: string;
  signer?: string;
}

/**
 * Verifies a published image against every policy governing its repository, one result per policy (a policy without a
 * rule for the image: NO_IMAGE_RULE), so the gate can judge it per Application by the policies that select it. Trust
 * material and the registry client (token cache) are built once. No rule for the image anywhere = a rejection:
 * nothing is trusted by default.
 */
export function createImageChecker(opts: {
  policies: PolicySource;
  /** The process's one parsed trusted root (the same object the commit checker uses); default: public good. */
  trust?: BundleTrust;
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
  const trust = opts.trust ?? createBundleTrust();
  const trustRevision = createHash('sha256').update(JSON.stringify(trust.json)).digest('hex');
  const mirrorOf = (image: string): string => {
    const slash = image.indexOf('/');
    const host = image.slice(0, slash);
    const to = opts.mirrors?.[host];
    return to ? `${to}${image.slice(slash)}` : image;
  };
  const verifier = createImageVerifier({
    registry: createRegistryClient({
      credentials: opts.credentials,
      insecureHosts: opts.insecureHosts,
      ...(opts.tokenRealms ? { tokenRealms: opts.tokenRealms } : {}),
    }),
    bundleVerifier: createBundleVerifier(trust),
    ...opts.limits,
  });
  return async (job) => {
    const governing = imagePoliciesFor(await opts.policies.current(), job.repoUrl, job.image);
    // Policies verifying with the same rule share one registry walk within a job.
    const byRule = new Map<string, Promise<RuleOutcome>>();
    const outcomes = await Promise.all(
      governing.map(async ({ policy, requirement }) => {
        const id = identityOf(policy);
        const base = { ...id, mode: policy.mode, selector: policy.selector };
        if (!requirement)
          return {
            ...base,
            ok: false,
            code: 'NO_IMAGE_RULE',
            reason: `policy ${policy.name} has no rule for image ${job.image}`,
          } satisfies PolicyResult;
        const outcome = await outcomeUnder(job, id, requirement, policy.branches, byRule);
        return {
          ...base,
          ok: outcome.ok,
          code: outcome.code,
          reason: outcome.reason,
          signer: outcome.signer,
          outcome,
        } satisfies PolicyResult & { outcome: RuleOutcome };
      }),
    );
    const ruled = outcomes.filter((o) => 'outcome' in o);
    if (ruled.length === 0) {
      return {
        image: job.image,
        digest: job.digest,
        ok: false,
        code: 'NO_IMAGE_POLICY',
        reason: `no policy for ${job.repoUrl} lists image ${job.image}`,
        policies: outcomes,
      };
    }
    // One verdict names one source commit. Enforce results choose it; a pass naming another commit (provenance only a
    // laxer rule trusts) does not count for this one.
    const ranked = [...ruled].sort((a, b) => (a.mode === b.mode ? 0 : a.mode === 'Enforce' ? -1 : 1));
    // A pass that vouches for no commit (a rule without provenance: any tenant can write one for this repository) never
    // chooses: otherwise it would turn every provenance-backed pass into a SOURCE_COMMIT_CONFLICT.
    const chosen =
      ranked.find((o) => o.ok && o.outcome.sourceCommit !== undefined) ?? ranked.find((o) => o.outcome.sourceCommit !== undefined);
    const sourceCommit = chosen?.outcome.sourceCommit;
    const policies: PolicyResult[] = outcomes.map(({ outcome, ...r }: PolicyResult & { outcome?: RuleOutcome }) =>
      r.ok && outcome?.sourceCommit !== sourceCommit
        ? {
            ...r,
            ok: false,
            code: 'SOURCE_COMMIT_CONFLICT',
            reason: `provenance trusted by this policy names ${outcome?.sourceCommit ?? 'no commit'}, not ${sourceCommit ?? 'none'}`,
          }
        : r,
    );
    const failing = ranked.map((o) => policies[outcomes.indexOf(o)]!).find((r) => !r.ok);
    return {
      image: job.image,
      digest: job.digest,
      // For the record only (every rule for the image passed): the gate decides per Application from the results.
      ok: failing === undefined,
      code: failing ? failing.code : 'VERIFIED',
      reason: failing ? `policy ${failing.name}: ${failing.reason ?? failing.code}` : undefined,
      sourceCommit,
      builder: chosen?.outcome.builder,
      signer: chosen?.outcome.signer,
      policy: ruled.map((o) => o.name).join(','),
      policies,
    };
  };

  async function outcomeUnder(
    job: VerifyImageJob,
    id: PolicyIdentity,
    requirement: ImageRule,
    branches: string[],
    byRule: Map<string, Promise<RuleOutcome>>,
  ): Promise<RuleOutcome> {
    // The cache key names the policy object at its generation: a result never outlives the policy it was computed under.
    const cacheKey = opts.cache
      ? `${opts.cache.prefix}:image-verdict-cache:${createHash('sha256')
          .update(JSON.stringify([job.image, job.digest, policyKey(id), requirement, trustRevision]))
          .digest('hex')}`
      : undefined;
    if (opts.cache && cacheKey) {
      const hit = await opts.cache.redis.get(cacheKey).catch(() => null);
      opts.cache.onLookup?.(hit !== null);
      if (hit) return JSON.parse(hit) as RuleOutcome;
    }
    const rule = JSON.stringify([requirement, branches]);
    let pending = byRule.get(rule);
    if (!pending) {
      pending = verify(job, requirement, branches);
      byRule.set(rule, pending);
    }
    const outcome = await pending;
    // Costly rejections (budget, deadline) are remembered for a while too: otherwise every package event for the
    // digest would make a verifier read the whole budget again. Other rejections are never cached.
    const ttl = outcome.ok
      ? (opts.cache?.ttlSeconds ?? 7 * 24 * 3600)
      : COSTLY_REJECTIONS.has(outcome.code)
        ? (opts.cache?.rejectionTtlSeconds ?? 600)
        : undefined;
    if (ttl !== undefined && opts.cache && cacheKey)
      await opts.cache.redis.set(cacheKey, JSON.stringify(outcome), 'EX', ttl).catch(() => undefined);
    return outcome;
  }

  async function verify(job: VerifyImageJob, requirement: ImageRule, branches: string[]): Promise<RuleOutcome> {
    const fetchFrom = mirrorOf(job.image);
    // The policy names the image as published; a mirror serves the same digests under another name.
    const v = await verifier.verifyImage({
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
}
