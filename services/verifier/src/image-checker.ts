import { createHash } from 'node:crypto';
import { createBundleTrust, createBundleVerifier } from '@gitops-gate/bundle-verify';
import type { BundleTrust } from '@gitops-gate/bundle-verify';
import type { CompiledPolicy } from '@gitops-gate/policy';
import { normalizeRepoUrl, type PolicyIdentity, type PolicyResult, type VerifyImageJob } from '@gitops-gate/contracts';
import { createImageVerifier, createRegistryClient, type ImageVerifierOptions, type RegistryCredential } from '@gitops-gate/oci';
import type { ImageCheckerFn, PolicySource } from './checks.js';
import {
  outcomeUnder,
  type ImageRule,
  type ImageVerdictCacheOptions,
  type RuleOutcome,
  type RuleOutcomeDeps,
} from './image-rule-outcome.js';

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
  cache?: ImageVerdictCacheOptions;
}): ImageCheckerFn {
  const trust = opts.trust ?? createBundleTrust();
  const deps: RuleOutcomeDeps = {
    trustRevision: createHash('sha256').update(JSON.stringify(trust.json)).digest('hex'),
    verifier: createImageVerifier({
      registry: createRegistryClient({
        credentials: opts.credentials,
        insecureHosts: opts.insecureHosts,
        ...(opts.tokenRealms ? { tokenRealms: opts.tokenRealms } : {}),
      }),
      bundleVerifier: createBundleVerifier(trust),
      ...opts.limits,
    }),
    ...(opts.mirrors ? { mirrors: opts.mirrors } : {}),
    ...(opts.cache ? { cache: opts.cache } : {}),
  };
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
        const outcome = await outcomeUnder(deps, job, id, requirement, policy.branches, byRule);
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
    return imageVerdictOf(job, outcomes);
  };
}

type PolicyOutcome = PolicyResult & { outcome?: RuleOutcome };

/** The image's verdict from each governing policy's result: which source commit it names, and the first failure. */
function imageVerdictOf(job: VerifyImageJob, outcomes: PolicyOutcome[]): Awaited<ReturnType<ImageCheckerFn>> {
  const ruled = outcomes.filter((o): o is PolicyResult & { outcome: RuleOutcome } => o.outcome !== undefined);
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
  const policies: PolicyResult[] = outcomes.map(({ outcome, ...r }) =>
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
}
