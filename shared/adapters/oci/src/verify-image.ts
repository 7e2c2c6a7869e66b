/**
 * Image verification: is this digest signed by someone the policy trusts, and (when required) was it built, per a
 * trusted SLSA provenance, from which source commit?
 *
 * Fail closed: every path that is not a positive proof ends in `ok: false` with a code and a reason. Only transient
 * registry trouble (5xx, 429, network) is thrown, as an OciError with `transient: true`, so the job is retried.
 */
import type { BundleSigner, BundleVerdict, BundleVerifier, SignerPolicy, Statement } from '@gitops-gate/bundle-verify';
import { normalizeRepoUrl } from '@gitops-gate/contracts';
import { discoverSigstoreMaterial } from './discover.js';
import type { DiscoverOptions, MaterialSource, SigstoreMaterial } from './discover.js';
import { IMAGE_MATERIAL_TOO_LARGE, OciError, createByteBudget } from './errors.js';
import type { JobLimits } from './errors.js';
import { BaseError } from '@gitops-gate/contracts/errors';
import { PROVENANCE_ERROR_CODES, ProvenanceError, SLSA_PROVENANCE_TYPES, builderMatchesSigner, readProvenance } from './provenance.js';
import { parseImageName, parseSha256Digest } from './reference.js';
import type { RegistryClient } from './registry.js';
import { refNameMatches } from '@gitops-gate/contracts/glob';

/** The image part of a GatePolicy (`spec.images[]`); dates may be ISO strings (as parsed from YAML) or Dates. */
export interface ImageRequirement {
  repository: string;
  keyless?: Array<{ identity?: string; identityRegExp?: string; issuer: string }>;
  keys?: Array<{ publicKeyPem: string; validFrom?: string | Date; validUntil?: string | Date; revoked?: boolean }>;
  /** Defaults to true, as in the policy schema. */
  requireProvenance?: boolean;
  /** Tag names or `*` globs a build may come from besides the policy's branches (release workflows on tags). */
  tags?: string[];
  /** Provenance from `pull_request` / `pull_request_target` runs vouches for nothing unless this is true. */
  allowPullRequestTriggers?: boolean;
  /** Provenance from self-hosted runners vouches for nothing unless this is true. */
  allowSelfHostedRunners?: boolean;
}

/**
 * What the provenance must have been built from: the repository the Application follows and the policy's branches.
 * A commit SHA alone is no binding: a fork, a pull-request merge ref or another repository of an organisation-wide
 * workflow can build the very same SHA with inputs the attacker controls.
 */
export interface ImageSource {
  /** The repository the Application follows (any URL form; compared normalised). */
  repository: string;
  /** Branch names or `*` globs (the policy's `branches`). */
  branches: string[];
}

export interface SignatureCheck {
  source: MaterialSource;
  location: string;
  kind: 'signature' | 'attestation';
  /** Verified predicate type for verified attestations, the claimed one otherwise. */
  predicateType?: string;
  ok: boolean;
  code?: string;
  reason?: string;
  signer?: BundleSigner;
  /** A verified SLSA provenance that vouches for no commit (not a CI identity, other repository, ref, trigger, runner). */
  provenanceRefused?: { code: string; reason: string };
}

export interface ProvenanceSummary {
  predicateType: string;
  builderId: string;
  sourceRepository?: string;
  sourceCommit?: string;
  signerIdentity: string;
  issuer: string;
}

export interface ImageVerdict {
  ok: boolean;
  code?: string;
  reason?: string;
  image: string;
  digest: string;
  signatures: SignatureCheck[];
  provenance?: ProvenanceSummary;
  /** The verified source commit: from the provenance, agreeing with the certificate's source-repository digest. */
  sourceCommit?: string;
}

export interface ImageVerifier {
  /** `signal` (optional) ends the job early, like its own deadline. */
  verifyImage(input: {
    image: string;
    digest: string;
    requirement: ImageRequirement;
    source: ImageSource;
    signal?: AbortSignal;
  }): Promise<ImageVerdict>;
}

export interface ImageVerifierOptions {
  registry: RegistryClient;
  bundleVerifier: BundleVerifier;
  /** Cap on referrers and legacy layers examined per image. */
  maxItems?: number;
  /** Registry bytes one job may read in all (manifests, referrer lists, signature blobs); default 8 MiB. */
  maxImageBytes?: number;
  /** Largest single signature blob; default 1 MiB. */
  maxSignatureBytes?: number;
  /** Time one job may take; default 60 s. */
  deadlineMs?: number;
}

export const DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_IMAGE_DEADLINE_MS = 60_000;

const SIMPLE_SIGNING_TYPE = 'cosign container image signature';

/** Codes of an image rejection raised inside this module (registry and bundle codes arrive through their errors). */
export const IMAGE_REJECT_CODES = [
  ...PROVENANCE_ERROR_CODES,
  'REQUIREMENT_INVALID',
  'SIMPLE_SIGNING_INVALID',
  'SIGNED_DIGEST_MISMATCH',
  'PROVENANCE_BUILDER_MISMATCH',
  'PROVENANCE_COMMIT_MISMATCH',
  'PROVENANCE_REF_MISMATCH',
  'PROVENANCE_REF_NOT_ALLOWED',
  'PROVENANCE_REPOSITORY_MISMATCH',
  'PROVENANCE_RUNNER_NOT_ALLOWED',
  'PROVENANCE_SIGNER_NOT_CI',
  'PROVENANCE_SOURCE_MISSING',
  'PROVENANCE_TRIGGER_NOT_ALLOWED',
] as const;
export type ImageRejectCode = (typeof IMAGE_REJECT_CODES)[number];

class Reject extends BaseError<ImageRejectCode> {}

/** A provenance that is consistent but does not vouch for a commit of the followed repository: it is not counted. */
class Refusal extends Reject {}

// GitHub's pull-request events, and GitLab's (its Fulcio trigger is CI_PIPELINE_SOURCE): runs whose inputs the
// author of a pull/merge request controls.
const PULL_REQUEST_TRIGGERS: ReadonlySet<string> = new Set([
  'pull_request',
  'pull_request_target',
  'merge_request_event',
  'external_pull_request_event',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toDate(v: string | Date | undefined, what: string): Date | undefined {
  if (v === undefined) return undefined;
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime())) throw new Reject('REQUIREMENT_INVALID', `${what} is not a valid date`);
  return d;
}

/** The requirement as bundle-verify policies: one per keyless rule, one for all usable keys. */
function policiesOf(req: ImageRequirement): SignerPolicy[] {
  if (!isObject(req)) throw new Reject('REQUIREMENT_INVALID', 'requirement is not an object');
  const out: SignerPolicy[] = [];
  for (const [i, r] of (req.keyless ?? []).entries()) {
    if (!isObject(r) || typeof r.issuer !== 'string' || r.issuer === '')
      throw new Reject('REQUIREMENT_INVALID', `keyless[${i}] has no issuer`);
    const hasId = typeof r.identity === 'string' && r.identity !== '';
    const hasRe = typeof r.identityRegExp === 'string' && r.identityRegExp !== '';
    if (!hasId && !hasRe) throw new Reject('REQUIREMENT_INVALID', `keyless[${i}] names no identity`);
    const p: SignerPolicy = { kind: 'keyless', issuer: r.issuer };
    if (hasId) p.identity = r.identity!;
    if (hasRe) p.identityRegExp = r.identityRegExp!;
    out.push(p);
  }
  const keys = (req.keys ?? [])
    .map((k, i) => ({ k, i }))
    .filter(({ k }) => k.revoked !== true)
    .map(({ k, i }) => {
      const key: { publicKeyPem: string; validFrom?: Date; validUntil?: Date } = { publicKeyPem: k.publicKeyPem };
      const from = toDate(k.validFrom, `keys[${i}].validFrom`);
      const until = toDate(k.validUntil, `keys[${i}].validUntil`);
      if (from !== undefined) key.validFrom = from;
      if (until !== undefined) key.validUntil = until;
      return key;
    });
  if (keys.length > 0) out.push({ kind: 'key', keys });
  if (out.length === 0) throw new Reject('REQUIREMENT_INVALID', 'the requirement trusts no signer (no keyless rules, no unrevoked keys)');
  return out;
}

function sameRepository(image: string, requirement: string): boolean {
  try {
    return parseImageName(image).name === parseImageName(requirement).name;
  } catch {
    return false;
  }
}

function checkSimpleSigning(payload: Buffer, digest: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Reject('SIMPLE_SIGNING_INVALID', 'signed payload is not JSON');
  }
  const critical = isObject(doc) ? doc['critical'] : undefined;
  const type = isObject(critical) ? critical['type'] : undefined;
  const img = isObject(critical) ? critical['image'] : undefined;
  const signed = isObject(img) ? img['docker-manifest-digest'] : undefined;
  if (type !== SIMPLE_SIGNING_TYPE) throw new Reject('SIMPLE_SIGNING_INVALID', 'signed payload is not a cosign container image signature');
  if (signed !== digest) {
    throw new Reject(
      'SIGNED_DIGEST_MISMATCH',
      `the signature is for ${typeof signed === 'string' ? signed.slice(0, 80) : 'no digest'}, not ${digest}`,
    );
  }
}

interface Verified {
  location: string;
  verdict: BundleVerdict;
}

/** Tries each policy; the most telling failure is kept (a policy of the wrong kind says the least). */
function verifyMaterial(bv: BundleVerifier, m: SigstoreMaterial, policies: SignerPolicy[], digest: string): BundleVerdict {
  if (m.simpleSigningPayload !== undefined) {
    try {
      checkSimpleSigning(m.simpleSigningPayload, digest);
    } catch (e) {
      if (e instanceof Reject) return { ok: false, code: e.code, reason: e.message };
      throw e;
    }
  }
  let best: BundleVerdict | undefined;
  for (const p of policies) {
    const v = bv.verify(m.bundle, m.artifact, p);
    if (v.ok) return v;
    if (best === undefined || (best.code === 'POLICY_MATERIAL_MISMATCH' && v.code !== 'POLICY_MATERIAL_MISMATCH')) best = v;
  }
  return best ?? { ok: false, code: 'REQUIREMENT_INVALID', reason: 'no policy to verify against' };
}

function summarize(checks: SignatureCheck[]): string {
  const failed = checks.filter((c) => !c.ok);
  const parts = failed.slice(0, 4).map((c) => `${c.location}: ${c.code ?? 'FAILED'} (${(c.reason ?? '').slice(0, 160)})`);
  return parts.join('; ') + (failed.length > 4 ? `; and ${failed.length - 4} more` : '');
}

interface ProvenanceOutcome {
  summary: ProvenanceSummary;
  sourceCommit: string;
}

// Policy branch and tag globs: the one ref-name matcher (`*` and `?` never cross `/`), re-exported for callers.
export { refNameMatches };

function refAllowed(ref: string, source: ImageSource, tags: string[]): boolean {
  if (ref.startsWith('refs/heads/')) return source.branches.some((b) => refNameMatches(b, ref.slice('refs/heads/'.length)));
  if (ref.startsWith('refs/tags/')) return tags.some((t) => refNameMatches(t, ref.slice('refs/tags/'.length)));
  return false;
}

const sameSourceRepository = (a: string, b: string): boolean => normalizeRepoUrl(a) === normalizeRepoUrl(b);

/**
 * A provenance counts only when its signing certificate is a CI identity whose Fulcio extensions (written by the CA
 * from the CI's OIDC token, not by the build) agree with it: source digest = the provenance's commit, source
 * repository = the provenance's repository = the followed repository, source ref = a policy branch (or tag), and the
 * run was not a pull-request run or on a self-hosted runner unless the requirement allows it.
 * A provenance that contradicts its own certificate is fatal (Reject); one that is merely out of scope is not counted
 * (Refusal), so a pull-request build of the same bytes cannot block the release build's provenance.
 */
function checkProvenance(
  statement: Statement,
  signer: BundleSigner,
  requirement: ImageRequirement,
  source: ImageSource,
): ProvenanceOutcome {
  let facts;
  try {
    facts = readProvenance(statement);
  } catch (e) {
    if (e instanceof ProvenanceError) throw new Reject(e.code, e.message);
    throw e;
  }
  const identity = signer.identity!;
  if (!builderMatchesSigner(facts.builderId, signer)) {
    throw new Reject('PROVENANCE_BUILDER_MISMATCH', `provenance builder ${facts.builderId} is not the signing workflow ${identity}`);
  }
  const certCommit = signer.sourceRepositoryDigest?.toLowerCase();
  const certRepo = signer.sourceRepositoryURI;
  if (certCommit === undefined || certRepo === undefined) {
    throw new Refusal(
      'PROVENANCE_SIGNER_NOT_CI',
      `${identity.slice(0, 200)} is not a CI identity (its certificate names no source repository and commit): it may sign the image but cannot vouch for the commit it was built from`,
    );
  }
  if (facts.sourceCommit === undefined || facts.sourceRepository === undefined) {
    throw new Refusal('PROVENANCE_SOURCE_MISSING', 'provenance names no source repository and commit');
  }
  if (certCommit !== facts.sourceCommit) {
    throw new Reject(
      'PROVENANCE_COMMIT_MISMATCH',
      `provenance names source commit ${facts.sourceCommit} but the signing certificate was issued for ${certCommit.slice(0, 64)}`,
    );
  }
  if (!sameSourceRepository(facts.sourceRepository, certRepo)) {
    throw new Reject(
      'PROVENANCE_REPOSITORY_MISMATCH',
      `provenance names source repository ${facts.sourceRepository.slice(0, 200)} but the signing certificate was issued for ${certRepo.slice(0, 200)}`,
    );
  }
  const certRef = signer.sourceRepositoryRef;
  if (certRef !== undefined && facts.sourceRef !== undefined && certRef !== facts.sourceRef) {
    throw new Reject(
      'PROVENANCE_REF_MISMATCH',
      `provenance names source ref ${facts.sourceRef.slice(0, 200)} but the signing certificate was issued for ${certRef.slice(0, 200)}`,
    );
  }
  if (!sameSourceRepository(certRepo, source.repository)) {
    throw new Refusal(
      'PROVENANCE_REPOSITORY_MISMATCH',
      `built from ${certRepo.slice(0, 200)}, not from the followed repository ${source.repository.slice(0, 200)}`,
    );
  }
  if (certRef === undefined || !refAllowed(certRef, source, requirement.tags ?? [])) {
    throw new Refusal(
      'PROVENANCE_REF_NOT_ALLOWED',
      `built from ref ${certRef === undefined ? '(none in the certificate)' : certRef.slice(0, 200)}, which is none of the policy's branches (${source.branches.join(', ').slice(0, 200)})${(requirement.tags ?? []).length > 0 ? ' or tags' : ''}`,
    );
  }
  const trigger = signer.buildTrigger;
  if (requirement.allowPullRequestTriggers !== true && (trigger === undefined || PULL_REQUEST_TRIGGERS.has(trigger))) {
    throw new Refusal(
      'PROVENANCE_TRIGGER_NOT_ALLOWED',
      trigger === undefined
        ? 'the signing certificate names no build trigger'
        : `built by a ${trigger} run (allowPullRequestTriggers is off)`,
    );
  }
  const runner = signer.runnerEnvironment;
  if (requirement.allowSelfHostedRunners !== true && (runner === undefined || runner === 'self-hosted')) {
    throw new Refusal(
      'PROVENANCE_RUNNER_NOT_ALLOWED',
      runner === undefined
        ? 'the signing certificate names no runner environment'
        : 'built on a self-hosted runner (allowSelfHostedRunners is off)',
    );
  }
  const summary: ProvenanceSummary = {
    predicateType: facts.predicateType,
    builderId: facts.builderId,
    sourceRepository: facts.sourceRepository,
    sourceCommit: facts.sourceCommit,
    signerIdentity: identity,
    issuer: signer.issuer ?? '',
  };
  return { summary, sourceCommit: facts.sourceCommit };
}

/** Why an image is rejected; the verdict gets these as its code and reason. */
interface Rejection {
  code: string;
  reason: string;
}

const isRejection = (v: object): v is Rejection => 'code' in v && 'reason' in v;

/** A well-formed name and digest, a requirement for this very image, and signers and a source to bind to. */
function checkRequest(image: string, digest: string, requirement: ImageRequirement, source: ImageSource): SignerPolicy[] | Rejection {
  try {
    parseImageName(image);
    parseSha256Digest(digest);
  } catch (e) {
    if (e instanceof OciError) return { code: e.code, reason: e.message };
    throw e;
  }
  try {
    if (typeof requirement?.repository !== 'string' || !sameRepository(image, requirement.repository)) {
      return {
        code: 'REQUIREMENT_MISMATCH',
        reason: `the requirement is for ${String(requirement?.repository).slice(0, 200)}, not ${image}`,
      };
    }
    const policies = policiesOf(requirement);
    if (!isObject(source) || typeof source.repository !== 'string' || source.repository === '' || !Array.isArray(source.branches)) {
      throw new Reject('REQUIREMENT_INVALID', 'no followed repository and branches to bind provenance to');
    }
    return policies;
  } catch (e) {
    if (e instanceof Reject) return { code: e.code, reason: e.message };
    throw e;
  }
}

/** The image itself must exist under this digest, with bytes that hash to it (transient trouble throws). */
async function checkManifest(registry: RegistryClient, image: string, digest: string, limits: JobLimits): Promise<Rejection | undefined> {
  try {
    await registry.getManifest(image, digest, limits);
    return undefined;
  } catch (e) {
    if (!(e instanceof OciError) || e.transient) throw e;
    if (e.code === 'NOT_FOUND') return { code: 'IMAGE_NOT_FOUND', reason: `${image}@${digest} is not in the registry` };
    if (e.code === 'DIGEST_MISMATCH') return { code: 'MANIFEST_DIGEST_MISMATCH', reason: e.message };
    return { code: e.code, reason: e.message };
  }
}

interface CollectedSignatures {
  /** Every item found: unreadable ones first, then each piece of material with its verdict. */
  checks: SignatureCheck[];
  /** How many pieces of material were read (verified or not). */
  material: number;
  verified: Verified[];
}

/** Verify-and-drop: each item is verified as it is read and only its verdict is kept. */
async function collectSignatures(
  opts: ImageVerifierOptions,
  image: string,
  digest: string,
  policies: SignerPolicy[],
  limits: JobLimits,
): Promise<CollectedSignatures> {
  const verified: Verified[] = [];
  const materialChecks: SignatureCheck[] = [];
  const onMaterial = (m: SigstoreMaterial): void => {
    const v = verifyMaterial(opts.bundleVerifier, m, policies, digest);
    const check: SignatureCheck = { source: m.source, location: m.location, kind: m.kind, ok: v.ok };
    const pt = v.statement?.predicateType ?? m.claimedPredicateType;
    if (pt !== undefined) check.predicateType = pt;
    if (v.ok) {
      if (v.signer !== undefined) check.signer = v.signer;
      verified.push({ location: m.location, verdict: v });
    } else {
      check.code = v.code ?? 'FAILED';
      check.reason = v.reason ?? '';
    }
    materialChecks.push(check);
  };
  const discoverOptions: DiscoverOptions = { limits, onMaterial };
  if (opts.maxItems !== undefined) discoverOptions.maxItems = opts.maxItems;
  if (opts.maxSignatureBytes !== undefined) discoverOptions.maxSignatureBytes = opts.maxSignatureBytes;
  const found = await discoverSigstoreMaterial(opts.registry, image, digest, discoverOptions);
  const checks: SignatureCheck[] = found.problems.map((p) => ({
    source: p.source,
    location: p.location,
    kind: p.source === 'cosign-attestation' ? 'attestation' : 'signature',
    ok: false,
    code: p.code,
    reason: p.reason,
  }));
  checks.push(...materialChecks);
  return { checks, material: materialChecks.length, verified };
}

/** No usable material, or none that verifies against the requirement. */
function signatureRejection({ checks, material, verified }: CollectedSignatures, digest: string): Rejection | undefined {
  if (material === 0) {
    if (checks.some((c) => c.code === 'MATERIAL_TOO_LARGE'))
      return { code: IMAGE_MATERIAL_TOO_LARGE, reason: `only oversized Sigstore material: ${summarize(checks)}` };
    return {
      code: 'NO_SIGNATURES',
      reason:
        checks.length === 0
          ? `no Sigstore signatures or attestations found for ${digest}`
          : `no usable Sigstore material: ${summarize(checks)}`,
    };
  }
  if (verified.length === 0)
    return { code: 'SIGNATURE_UNVERIFIED', reason: `no signature verifies against the requirement: ${summarize(checks)}` };
  return undefined;
}

/**
 * Provenance: every trusted SLSA statement is checked (an inconsistent one is fatal), those that vouch for a commit
 * of the followed repository are counted, and the counted ones must agree. Refused statements are marked on their
 * check. Returns the counted provenances, or why the image is rejected.
 */
function judgeProvenance(
  { checks, verified }: CollectedSignatures,
  requirement: ImageRequirement,
  source: ImageSource,
  digest: string,
): ProvenanceOutcome[] | Rejection {
  const provenances: ProvenanceOutcome[] = [];
  const refused: SignatureCheck[] = [];
  let keySigned = 0;
  for (const [i, { verdict: v }] of verified.entries()) {
    const st = v.statement;
    if (st === undefined || !SLSA_PROVENANCE_TYPES.has(st.predicateType)) continue;
    if (v.signer?.identity === undefined) {
      // A key says nothing about which workflow built the image; provenance must come from a workflow identity.
      keySigned++;
      continue;
    }
    try {
      provenances.push(checkProvenance(st, v.signer, requirement, source));
    } catch (e) {
      if (e instanceof Refusal) {
        const check = checks.find((c) => c.location === verified[i]!.location && c.ok);
        if (check !== undefined) {
          check.provenanceRefused = { code: e.code, reason: e.message };
          refused.push(check);
        }
        continue;
      }
      if (e instanceof Reject) return { code: e.code, reason: e.message };
      throw e;
    }
  }
  const commits = new Set(provenances.map((p) => p.sourceCommit));
  if (commits.size > 1)
    return { code: 'PROVENANCE_CONFLICT', reason: `trusted provenances name different source commits: ${[...commits].join(', ')}` };
  if (provenances.length === 0 && requirement.requireProvenance !== false) {
    const claimed = checks.filter((c) => c.predicateType !== undefined && SLSA_PROVENANCE_TYPES.has(c.predicateType));
    if (claimed.length === 0) return { code: 'PROVENANCE_MISSING', reason: `no SLSA provenance found for ${digest}` };
    const first = refused[0]?.provenanceRefused;
    if (first !== undefined) {
      const why = refused
        .map((c) => `${c.location}: ${c.provenanceRefused!.code} (${c.provenanceRefused!.reason.slice(0, 200)})`)
        .slice(0, 4);
      return {
        code: first.code,
        reason: `no SLSA provenance vouches for a commit of ${source.repository.slice(0, 200)}: ${why.join('; ')}`,
      };
    }
    const why = keySigned > 0 ? 'provenance is signed with a key, not by a trusted workflow identity' : summarize(claimed);
    return { code: 'PROVENANCE_UNVERIFIED', reason: `no SLSA provenance verifies against the requirement: ${why}` };
  }
  return provenances;
}

/** One job's checks in order; the first rejection ends it. `verdict.signatures` is filled once material was read. */
async function run(
  opts: ImageVerifierOptions,
  image: string,
  digest: string,
  requirement: ImageRequirement,
  source: ImageSource,
  limits: JobLimits,
  verdict: ImageVerdict,
): Promise<ImageVerdict> {
  const reject = (r: Rejection): ImageVerdict => ({ ...verdict, ok: false, code: r.code, reason: r.reason });
  const policies = checkRequest(image, digest, requirement, source);
  if (isRejection(policies)) return reject(policies);
  const missing = await checkManifest(opts.registry, image, digest, limits);
  if (missing) return reject(missing);
  const collected = await collectSignatures(opts, image, digest, policies, limits);
  verdict.signatures = collected.checks;
  const unsigned = signatureRejection(collected, digest);
  if (unsigned) return reject(unsigned);
  const provenances = judgeProvenance(collected, requirement, source, digest);
  if (isRejection(provenances)) return reject(provenances);
  const out: ImageVerdict = { ...verdict, ok: true };
  const first = provenances[0];
  if (first !== undefined) {
    out.provenance = first.summary;
    out.sourceCommit = first.sourceCommit;
  }
  return out;
}

export function createImageVerifier(opts: ImageVerifierOptions): ImageVerifier {
  return {
    async verifyImage({ image, digest, requirement, source, signal }) {
      const verdict: ImageVerdict = { ok: false, image, digest, signatures: [] };
      // One budget and one deadline for everything this job reads: per-item caps alone let one pushed image make a
      // verifier read (and hold) hundreds of MiB, on every delivery.
      const deadline = AbortSignal.timeout(opts.deadlineMs ?? DEFAULT_IMAGE_DEADLINE_MS);
      const limits: JobLimits = {
        budget: createByteBudget(opts.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES),
        signal: signal === undefined ? deadline : AbortSignal.any([deadline, signal]),
      };
      try {
        return await run(opts, image, digest, requirement, source, limits, verdict);
      } catch (e) {
        if (e instanceof OciError && e.transient) throw e;
        if (e instanceof OciError) return { ...verdict, ok: false, code: e.code, reason: e.message };
        // Anything unforeseen is still a rejection, never a pass.
        let reason = 'internal error';
        try {
          reason = `internal error: ${e instanceof Error ? e.message : String(e)}`;
        } catch {
          // A hostile object whose toString throws.
        }
        return { ...verdict, ok: false, code: 'INTERNAL_ERROR', reason };
      }
    },
  };
}
