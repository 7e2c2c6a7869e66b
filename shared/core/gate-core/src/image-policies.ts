/**
 * Which policies an Application's images must satisfy, and whether stored image results satisfy them. Pure.
 *
 * - An image counts for an Application only under every live Enforce policy that selects the Application and governs
 *   its repository and branch; an Audit policy never supplies the rule for an Enforce decision.
 * - A result counts only when computed for this Application's repository, under the same policy object at its live
 *   generation, naming this commit as the image's source. A result under another generation asks for the image to be
 *   verified again; it never counts.
 * - One digest must satisfy every policy: two builds each passing a different policy are not one trusted image.
 */
import { normalizeRepoUrl, policyKey, type CommitVerdictJob, type PolicyIdentity, type PolicyResult } from '@gitops-gate/contracts';
import type { Application } from './applications.js';
import { policySelects, type LivePolicy } from '@gitops-gate/policy';

type Named = Pick<PolicyResult, 'name'> & Partial<Pick<PolicyResult, 'scope' | 'namespace' | 'uid' | 'generation'>>;
type PolicyLike = Named & Pick<PolicyResult, 'mode' | 'selector'>;

/** One policy's stored result for one image digest, as the gate keeps it (see images.ts; stored by gate-store's image-state.ts). */
export interface StoredImageResult extends PolicyIdentity {
  mode: 'Enforce' | 'Audit';
  ok: boolean;
  code: string;
  reason?: string;
  /** Normalised repository the verdict was computed for (the repository that published the image). */
  repoUrl: string;
  image: string;
  digest: string;
  sourceCommit?: string;
  verifiedAt: string;
}

export function identityOf(p: Named): PolicyIdentity {
  const scope = p.scope ?? 'Namespaced';
  const slash = p.name.indexOf('/');
  // Producers that predate policy identities name a GatePolicy `namespace/name` without a namespace field: the same
  // object must give the same key on both sides of the comparison.
  const namespace = p.namespace ?? (scope === 'Namespaced' && slash > 0 ? p.name.slice(0, slash) : undefined);
  return { scope, namespace, name: p.name, uid: p.uid, generation: p.generation };
}

/** The policy object, whatever its generation: a newer result for it replaces an older one. */
export function policyObjectKey(p: Named): string {
  return policyKey({ ...identityOf(p), generation: undefined });
}

function appliesTo(p: PolicyLike, app: Application): boolean {
  // The one tenancy rule (policies.ts): a namespaced GatePolicy governs its own namespace's Applications only.
  return policySelects({ ...identityOf(p), selector: p.selector }, app);
}

/**
 * The policies (at the generation that must be met) whose image rules decide for `app` at `verdict`'s commit.
 * `live` undefined = the gate does not watch policies: the verdict's own results are all there is.
 */
export function imagePoliciesFor(
  app: Application,
  verdict: CommitVerdictJob,
  live: LivePolicy[] | undefined,
  mode: 'Enforce' | 'Audit',
): PolicyIdentity[] {
  const fromVerdict = verdict.policies.filter((p) => p.mode === mode && appliesTo(p, app));
  if (!live) return fromVerdict.map(identityOf);
  return [
    ...live.filter((l) => l.mode === mode && l.governs(verdict.repoUrl, verdict.branch) && appliesTo(l, app)).map(identityOf),
    // The verifier's policy files are invisible to the gate's watch: their results stand for themselves.
    ...fromVerdict.filter((p) => p.scope === 'File').map(identityOf),
  ];
}

export interface ImageCheck {
  complete: boolean;
  /** What is missing or why, per required image. */
  missing: string[];
  /** image@digest of the build that satisfied each image. */
  satisfiedBy: string[];
  /** Builds of this commit whose results predate a live policy generation: to be verified again. */
  reverify: { image: string; digest: string; repoUrl: string }[];
}

/**
 * Does every required image have one build of `sha`, published for `repoUrl`, that every policy in `policies` passed
 * at its live generation? `builds` maps `image@digest` to that digest's stored results (any repository, any policy).
 */
export function checkImageRequirement(input: {
  images: string[];
  sha: string;
  repoUrl: string;
  policies: PolicyIdentity[];
  builds: Map<string, StoredImageResult[]>;
}): ImageCheck {
  const repo = normalizeRepoUrl(input.repoUrl);
  const short = input.sha.slice(0, 12);
  const out: ImageCheck = { complete: false, missing: [], satisfiedBy: [], reverify: [] };
  for (const image of input.images) {
    if (input.policies.length === 0) {
      // Fail closed: a commit decision without a live policy behind it never lets images through.
      out.missing.push(`${image}: no live policy with an image rule governs this Application`);
      continue;
    }
    const problems: string[] = [];
    let satisfied: string | undefined;
    for (const [build, all] of input.builds) {
      const first = all[0];
      if (!first || first.image.toLowerCase() !== image) continue;
      // A verdict computed for another repository never counts, and is no reason to verify anything again.
      const results = all.filter((r) => normalizeRepoUrl(r.repoUrl) === repo);
      if (results.length === 0) continue;
      const stale: string[] = [];
      const rejected: string[] = [];
      for (const p of input.policies) {
        const r = results.find((x) => policyObjectKey(x) === policyObjectKey(p));
        if (!r || r.generation !== p.generation) stale.push(`${p.name}@${p.generation ?? '-'}`);
        else if (!r.ok) rejected.push(`${r.code}${r.reason ? `: ${r.reason}` : ''} (policy ${p.name})`);
        else if (r.sourceCommit !== input.sha)
          rejected.push(`built from ${r.sourceCommit?.slice(0, 12) ?? 'an unknown commit'} (policy ${p.name})`);
      }
      if (stale.length === 0 && rejected.length === 0) {
        satisfied = build;
        break;
      }
      if (rejected.length > 0) {
        problems.push(`${build} built from ${short} was rejected: ${rejected.join('; ')}`);
      } else {
        problems.push(`${build} built from ${short} was not verified under policy ${stale.join(', ')}: verifying again`);
        out.reverify.push({ image: first.image, digest: first.digest, repoUrl: repo });
      }
    }
    if (satisfied) out.satisfiedBy.push(satisfied);
    else out.missing.push(problems.length > 0 ? problems.join('; ') : `${image}: no verified build from ${short} yet`);
  }
  out.complete = out.missing.length === 0;
  return out;
}
