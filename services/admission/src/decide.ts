/**
 * The admission decision, pure: which images a Pod (or a workload's pod template) runs, which policies guard its
 * namespace, and whether the verdicts the verifiers stored (gate-store's image-state.ts, `image-results`) let each image in.
 *
 * Rules (fail closed; each one is a reason code in the answer):
 * - every container, init container and ephemeral container image is referenced by digest (`TAG_ONLY` otherwise);
 * - the policies guarding the namespace (policiesForNamespace): those whose tenancy rule selects it, and those that
 *   select an Application deploying into it;
 * - each policy of the deciding mode must have an image rule for the image's repository (`NOT_COVERED`) and a stored
 *   result for that digest, computed for the policy's repository under the policy object at its live generation
 *   (the gate's identity rule, image-policies.ts policyObjectKey) (`NO_VERDICT`), that passed (`VERDICT_FAILED`);
 * - a policy annotated `gitops-gate.io/admission-require-pinned-commit: "true"` also needs the verdict's source
 *   commit to be one the gate has pinned for an Application deploying into this namespace (`UNPINNED_COMMIT`).
 * Enforce policies decide; when only Audit policies guard the namespace the review is allowed with warnings.
 * A namespace no policy guards is allowed (the gate guards nothing there either).
 */
import { policySelects, type CompiledPolicy } from '@gitops-gate/policy';
import { BaseError } from '@gitops-gate/contracts/errors';
import { normalizeRepoUrl, type PolicyIdentity, type PolicySelector } from '@gitops-gate/contracts';
import { identityOf, policyObjectKey, type Application, type StoredImageResult } from '@gitops-gate/gate-core';

export const ADMISSION_REASON_CODES = [
  'TAG_ONLY',
  'BAD_IMAGE_REFERENCE',
  'NOT_COVERED',
  'NO_VERDICT',
  'VERDICT_FAILED',
  'UNPINNED_COMMIT',
] as const;
export type AdmissionReasonCode = (typeof ADMISSION_REASON_CODES)[number];

export const ADMISSION_ERROR_CODES = ['REVIEW_MALFORMED', 'KIND_UNSUPPORTED'] as const;
export type AdmissionErrorCode = (typeof ADMISSION_ERROR_CODES)[number];
export class AdmissionError extends BaseError<AdmissionErrorCode> {}

export const REQUIRE_PINNED_ANNOTATION = 'gitops-gate.io/admission-require-pinned-commit';
/** Break glass: a Pod (template) carrying this label is admitted and audited; deploy/ lets only admins set it. */
export const EXEMPT_LABEL = 'gitops-gate.io/admission-exempt';

export interface AdmissionPolicy {
  identity: PolicyIdentity;
  mode: 'Enforce' | 'Audit';
  /** The policy's selector (Applications: labels, names, namespaces). */
  selector: PolicySelector;
  /** Normalised repository whose builds the policy trusts. */
  repository: string;
  /** Image repositories (lower case) the policy has a rule for. */
  images: string[];
  requirePinnedCommit: boolean;
}

export function admissionPolicyOf(p: CompiledPolicy, annotations: Record<string, string> | undefined): AdmissionPolicy {
  return {
    identity: identityOf(p),
    mode: p.mode,
    selector: p.selector,
    repository: normalizeRepoUrl(p.repository),
    images: p.images.map((i) => i.repository.toLowerCase()),
    requirePinnedCommit: annotations?.[REQUIRE_PINNED_ANNOTATION] === 'true',
  };
}

/** Where an Argo CD Application deploys (spec.destination.namespace). */
export function destinationOf(app: Application): string | undefined {
  const d = (app.spec?.destination as { namespace?: unknown } | undefined)?.namespace;
  return typeof d === 'string' && d ? d : undefined;
}

/**
 * The policies guarding `namespace`: those whose tenancy rule (gate-core policySelects) selects the namespace itself
 * (a GatePolicy in it; a ClusterGatePolicy or file policy whose `selector.namespaces` is empty or names it), and
 * those that select an Application deploying into it (`spec.destination.namespace`), with the gate's own selector
 * rule (labels, names, the policy's namespace). A policy guards more namespaces this way, never fewer.
 */
export function policiesForNamespace(policies: AdmissionPolicy[], namespace: string, apps: Application[] = []): AdmissionPolicy[] {
  const deploying = apps.filter((a) => destinationOf(a) === namespace);
  return policies.filter((p) => {
    const tenancy = { scope: p.identity.scope, namespace: p.identity.namespace };
    if (policySelects({ ...tenancy, selector: { namespaces: p.selector.namespaces } }, { metadata: { name: '', namespace } })) return true;
    return deploying.some((a) => policySelects({ ...tenancy, selector: p.selector }, a));
  });
}

export interface ImageRef {
  /** As written in the manifest. */
  ref: string;
  /** Registry/path, lower case, Docker Hub names completed (`nginx` → `docker.io/library/nginx`). */
  repository: string;
  tag?: string;
  digest?: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseImageRef(ref: string): ImageRef | undefined {
  if (ref.length === 0 || ref.length > 1024 || /\s/.test(ref)) return undefined;
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  if (digest !== undefined && !DIGEST.test(digest)) return undefined;
  let name = at >= 0 ? ref.slice(0, at) : ref;
  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  if (name.length === 0) return undefined;
  const first = name.split('/')[0] ?? '';
  const hasHost = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasHost) name = `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  return { ref, repository: name.toLowerCase(), tag, digest };
}

export interface ContainerImage {
  container: string;
  image: string;
}

export interface Problem {
  container: string;
  image: string;
  digest?: string;
  policy?: string;
  code: AdmissionReasonCode;
  message: string;
}

export interface AdmissionDecision {
  allowed: boolean;
  /** Deciding mode: none = no policy guards the namespace. */
  mode: 'Enforce' | 'Audit' | 'none';
  problems: Problem[];
  warnings: string[];
  /** One line for the API server's answer (status.message). */
  message: string;
}

/** `repository@digest` keys whose stored results the decision needs (one Redis round trip). */
export function buildsToLookUp(images: ContainerImage[]): string[] {
  const out = new Set<string>();
  for (const c of images) {
    const r = parseImageRef(c.image);
    if (r?.digest) out.add(`${r.repository}@${r.digest}`);
  }
  return [...out];
}

function checkOne(
  c: ContainerImage,
  policies: AdmissionPolicy[],
  results: Map<string, StoredImageResult[]>,
  pinned: ReadonlySet<string>,
): Problem[] {
  const ref = parseImageRef(c.image);
  const base = { container: c.container, image: c.image };
  if (!ref) return [{ ...base, code: 'BAD_IMAGE_REFERENCE', message: `${c.container}: ${c.image} is not an image reference` }];
  if (!ref.digest) {
    return [
      {
        ...base,
        code: 'TAG_ONLY',
        message: `${c.container}: ${c.image} is not referenced by digest: use ${ref.repository}@sha256:… (the digest the gate verified)`,
      },
    ];
  }
  const covering = policies.filter((p) => p.images.includes(ref.repository));
  if (covering.length === 0) {
    const names = policies.map((p) => p.identity.name).join(', ');
    return [
      {
        ...base,
        digest: ref.digest,
        code: 'NOT_COVERED',
        message: `${c.container}: no image rule for ${ref.repository} in policy ${names}`,
      },
    ];
  }
  const stored = results.get(`${ref.repository}@${ref.digest}`) ?? [];
  const out: Problem[] = [];
  for (const p of covering) {
    const key = policyObjectKey(p.identity);
    const r = stored.find((x) => policyObjectKey(x) === key && normalizeRepoUrl(x.repoUrl) === p.repository);
    const at = { ...base, digest: ref.digest, policy: p.identity.name };
    if (!r || r.generation !== p.identity.generation) {
      const why = r
        ? `was verified under generation ${r.generation ?? '-'}, policy is at ${p.identity.generation ?? '-'}`
        : 'has no verdict';
      out.push({
        ...at,
        code: 'NO_VERDICT',
        message: `${c.container}: ${ref.repository}@${ref.digest} ${why} under policy ${p.identity.name}: publish it from CI (registry_package event) or run \`gitops-gate webhook package\` so the verifier checks it`,
      });
    } else if (!r.ok) {
      out.push({
        ...at,
        code: 'VERDICT_FAILED',
        message: `${c.container}: ${ref.repository}@${ref.digest} was rejected under policy ${p.identity.name}: ${r.code}${r.reason ? `: ${r.reason}` : ''}`,
      });
    } else if (p.requirePinnedCommit && (!r.sourceCommit || !pinned.has(r.sourceCommit))) {
      out.push({
        ...at,
        code: 'UNPINNED_COMMIT',
        message: `${c.container}: ${ref.repository}@${ref.digest} was built from ${r.sourceCommit?.slice(0, 12) ?? 'an unknown commit'}, which the gate has not pinned for an Application in this namespace (policy ${p.identity.name})`,
      });
    }
  }
  return out;
}

export function decideAdmission(input: {
  images: ContainerImage[];
  /** The policies guarding the review's namespace (policiesForNamespace). */
  policies: AdmissionPolicy[];
  results: Map<string, StoredImageResult[]>;
  /** Source commits the gate has pinned for Applications deploying into the namespace. */
  pinned: ReadonlySet<string>;
}): AdmissionDecision {
  const enforce = input.policies.filter((p) => p.mode === 'Enforce');
  const audit = input.policies.filter((p) => p.mode === 'Audit');
  if (enforce.length === 0 && audit.length === 0)
    return { allowed: true, mode: 'none', problems: [], warnings: [], message: 'no policy guards this namespace' };
  const enforced = enforce.length > 0 ? input.images.flatMap((c) => checkOne(c, enforce, input.results, input.pinned)) : [];
  const audited = audit.length > 0 ? input.images.flatMap((c) => checkOne(c, audit, input.results, input.pinned)) : [];
  const warnings = audited.map((p) => `audit (${p.code}): ${p.message}`);
  if (enforce.length === 0) {
    return {
      allowed: true,
      mode: 'Audit',
      problems: audited,
      warnings,
      message: audited.length ? 'allowed in Audit mode: Enforce would deny' : 'allowed',
    };
  }
  if (enforced.length > 0) {
    return {
      allowed: false,
      mode: 'Enforce',
      problems: enforced,
      warnings,
      message: `gitops-gate denied: ${enforced.map((p) => `[${p.code}] ${p.message}`).join('; ')}`,
    };
  }
  return { allowed: true, mode: 'Enforce', problems: [], warnings, message: 'every image has a passing verdict' };
}
