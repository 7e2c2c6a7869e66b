/**
 * Image verification: is this digest signed by someone the policy trusts, and (when required) was it built, per a
 * trusted SLSA provenance, from which source commit?
 *
 * Fail closed: every path that is not a positive proof ends in `ok: false` with a code and a reason. Only transient
 * registry trouble (5xx, 429, network) is thrown, as an OciError with `transient: true`, so the job is retried.
 */
import type { Artifact, BundleSigner, BundleVerdict, BundleVerifier, SignerPolicy, Statement } from '@gitops-gate/bundle-verify';
import { discoverSigstoreMaterial } from './discover.js';
import type { MaterialSource, SigstoreMaterial } from './discover.js';
import { OciError } from './errors.js';
import { ProvenanceError, SLSA_PROVENANCE_TYPES, builderMatchesSigner, readProvenance } from './provenance.js';
import { parseImageName, parseSha256Digest } from './reference.js';
import type { RegistryClient } from './registry.js';

/** The image part of a GatePolicy (`spec.images[]`); dates may be ISO strings (as parsed from YAML) or Dates. */
export interface ImageRequirement {
  repository: string;
  keyless?: Array<{ identity?: string; identityRegExp?: string; issuer: string }>;
  keys?: Array<{ publicKeyPem: string; validFrom?: string | Date; validUntil?: string | Date; revoked?: boolean }>;
  /** Defaults to true, as in the policy schema. */
  requireProvenance?: boolean;
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
  verifyImage(input: { image: string; digest: string; requirement: ImageRequirement }): Promise<ImageVerdict>;
}

export interface ImageVerifierOptions {
  registry: RegistryClient;
  bundleVerifier: BundleVerifier;
  /** Cap on referrers and legacy layers examined per image. */
  maxItems?: number;
}

const SIMPLE_SIGNING_TYPE = 'cosign container image signature';

class Reject extends Error {
  readonly code: string;
  constructor(code: string, reason: string) {
    super(reason);
    this.code = code;
  }
}

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
    if (!isObject(r) || typeof r.issuer !== 'string' || r.issuer === '') throw new Reject('REQUIREMENT_INVALID', `keyless[${i}] has no issuer`);
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
    throw new Reject('SIGNED_DIGEST_MISMATCH', `the signature is for ${typeof signed === 'string' ? signed.slice(0, 80) : 'no digest'}, not ${digest}`);
  }
}

interface Verified {
  material: SigstoreMaterial;
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
    const v = bv.verify(m.bundle, m.artifact as Artifact, p);
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
  sourceCommit?: string;
}

/** A provenance whose signer the policy trusts must also be internally consistent; inconsistency is fatal. */
function checkProvenance(statement: Statement, signer: BundleSigner): ProvenanceOutcome {
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
  if (certCommit !== undefined && facts.sourceCommit !== undefined && certCommit !== facts.sourceCommit) {
    throw new Reject(
      'PROVENANCE_COMMIT_MISMATCH',
      `provenance names source commit ${facts.sourceCommit} but the signing certificate was issued for ${certCommit.slice(0, 64)}`,
    );
  }
  let sourceCommit = facts.sourceCommit;
  if (sourceCommit === undefined && certCommit !== undefined && /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(certCommit)) sourceCommit = certCommit;
  const summary: ProvenanceSummary = {
    predicateType: facts.predicateType,
    builderId: facts.builderId,
    signerIdentity: identity,
    issuer: signer.issuer ?? '',
  };
  if (facts.sourceRepository !== undefined) summary.sourceRepository = facts.sourceRepository;
  if (sourceCommit !== undefined) summary.sourceCommit = sourceCommit;
  return sourceCommit === undefined ? { summary } : { summary, sourceCommit };
}

export function createImageVerifier(opts: ImageVerifierOptions): ImageVerifier {
  const { registry, bundleVerifier } = opts;

  async function run(image: string, digest: string, requirement: ImageRequirement, verdict: ImageVerdict): Promise<ImageVerdict> {
    const reject = (code: string, reason: string): ImageVerdict => ({ ...verdict, ok: false, code, reason });
    try {
      parseImageName(image);
      parseSha256Digest(digest);
    } catch (e) {
      if (e instanceof OciError) return reject(e.code, e.message);
      throw e;
    }
    let policies: SignerPolicy[];
    try {
      if (typeof requirement?.repository !== 'string' || !sameRepository(image, requirement.repository)) {
        return reject('REQUIREMENT_MISMATCH', `the requirement is for ${String(requirement?.repository).slice(0, 200)}, not ${image}`);
      }
      policies = policiesOf(requirement);
    } catch (e) {
      if (e instanceof Reject) return reject(e.code, e.message);
      throw e;
    }
    const requireProvenance = requirement.requireProvenance !== false;

    // The image itself must exist under this digest, with bytes that hash to it.
    try {
      await registry.getManifest(image, digest);
    } catch (e) {
      if (!(e instanceof OciError) || e.transient) throw e;
      if (e.code === 'NOT_FOUND') return reject('IMAGE_NOT_FOUND', `${image}@${digest} is not in the registry`);
      if (e.code === 'DIGEST_MISMATCH') return reject('MANIFEST_DIGEST_MISMATCH', e.message);
      return reject(e.code, e.message);
    }

    const found = await discoverSigstoreMaterial(registry, image, digest, opts.maxItems === undefined ? {} : { maxItems: opts.maxItems });
    const checks: SignatureCheck[] = found.problems.map((p) => ({
      source: p.source,
      location: p.location,
      kind: p.source === 'cosign-attestation' ? 'attestation' : 'signature',
      ok: false,
      code: p.code,
      reason: p.reason,
    }));
    verdict.signatures = checks;
    if (found.materials.length === 0) {
      return reject('NO_SIGNATURES', checks.length === 0 ? `no Sigstore signatures or attestations found for ${digest}` : `no usable Sigstore material: ${summarize(checks)}`);
    }

    const verified: Verified[] = [];
    for (const m of found.materials) {
      const v = verifyMaterial(bundleVerifier, m, policies, digest);
      const check: SignatureCheck = { source: m.source, location: m.location, kind: m.kind, ok: v.ok };
      const pt = v.statement?.predicateType ?? m.claimedPredicateType;
      if (pt !== undefined) check.predicateType = pt;
      if (v.ok) {
        if (v.signer !== undefined) check.signer = v.signer;
        verified.push({ material: m, verdict: v });
      } else {
        check.code = v.code ?? 'FAILED';
        check.reason = v.reason ?? '';
      }
      checks.push(check);
    }
    if (verified.length === 0) return reject('SIGNATURE_UNVERIFIED', `no signature verifies against the requirement: ${summarize(checks)}`);

    // Provenance: every trusted SLSA statement is checked (an inconsistent one is fatal), and they must agree.
    const provenances: ProvenanceOutcome[] = [];
    let keySigned = 0;
    for (const { verdict: v } of verified) {
      const st = v.statement;
      if (st === undefined || !SLSA_PROVENANCE_TYPES.has(st.predicateType)) continue;
      if (v.signer?.identity === undefined) {
        // A key says nothing about which workflow built the image; provenance must come from a workflow identity.
        keySigned++;
        continue;
      }
      try {
        provenances.push(checkProvenance(st, v.signer));
      } catch (e) {
        if (e instanceof Reject) return reject(e.code, e.message);
        throw e;
      }
    }
    const commits = new Set(provenances.map((p) => p.sourceCommit).filter((c) => c !== undefined));
    if (commits.size > 1) return reject('PROVENANCE_CONFLICT', `trusted provenances name different source commits: ${[...commits].join(', ')}`);
    if (provenances.length === 0 && requireProvenance) {
      const claimed = checks.filter((c) => c.predicateType !== undefined && SLSA_PROVENANCE_TYPES.has(c.predicateType));
      if (claimed.length === 0) return reject('PROVENANCE_MISSING', `no SLSA provenance found for ${digest}`);
      const why = keySigned > 0 ? 'provenance is signed with a key, not by a trusted workflow identity' : summarize(claimed);
      return reject('PROVENANCE_UNVERIFIED', `no SLSA provenance verifies against the requirement: ${why}`);
    }
    const out: ImageVerdict = { ...verdict, ok: true };
    const first = provenances.find((p) => p.sourceCommit !== undefined) ?? provenances[0];
    if (first !== undefined) {
      out.provenance = first.summary;
      if (first.sourceCommit !== undefined) out.sourceCommit = first.sourceCommit;
    }
    return out;
  }

  return {
    async verifyImage({ image, digest, requirement }) {
      const verdict: ImageVerdict = { ok: false, image, digest, signatures: [] };
      try {
        return await run(image, digest, requirement, verdict);
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
