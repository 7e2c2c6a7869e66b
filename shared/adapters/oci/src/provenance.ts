import { BaseError } from '@gitops-gate/contracts/errors';
/**
 * What an SLSA provenance statement says about how an image was built: the builder and the source commit.
 * v1:   predicate.runDetails.builder.id, predicate.buildDefinition.resolvedDependencies[].digest.gitCommit
 * v0.2: predicate.builder.id,            predicate.invocation.configSource.digest.sha1
 * Only the statement's *content* is read here; whether its signer is trusted is decided by the caller.
 */
import type { Statement } from '@gitops-gate/bundle-verify';

export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const SLSA_PROVENANCE_V02 = 'https://slsa.dev/provenance/v0.2';
export const SLSA_PROVENANCE_TYPES: ReadonlySet<string> = new Set([SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02]);

export interface ProvenanceFacts {
  predicateType: string;
  builderId: string;
  sourceRepository?: string;
  /** Lower-case hex git commit (SHA-1 or SHA-256 object id). */
  sourceCommit?: string;
  /** The git ref the source was taken from (`refs/heads/main`), when the provenance states one. */
  sourceRef?: string;
}

export const PROVENANCE_ERROR_CODES = ['PROVENANCE_INVALID', 'PROVENANCE_SOURCE_AMBIGUOUS'] as const;
export type ProvenanceErrorCode = (typeof PROVENANCE_ERROR_CODES)[number];
export class ProvenanceError extends BaseError<ProvenanceErrorCode> {}

const COMMIT = /^[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function get(o: unknown, ...path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function commitValue(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !COMMIT.test(v)) throw new ProvenanceError('PROVENANCE_INVALID', `${what} is not a full hex commit id`);
  return v.toLowerCase();
}

/** `git+https://github.com/org/repo@refs/heads/main` → `https://github.com/org/repo` and `refs/heads/main`. */
function splitSourceUri(uri: unknown): { repository: string; ref?: string } | undefined {
  if (typeof uri !== 'string' || uri === '') return undefined;
  const u = uri.startsWith('git+') ? uri.slice(4) : uri;
  const scheme = u.indexOf('://');
  const at = u.indexOf('@', scheme < 0 ? 0 : scheme + 3);
  // An '@' after the host part separates the ref (user-info '@' comes before the first '/').
  const slash = u.indexOf('/', scheme < 0 ? 0 : scheme + 3);
  if (at > slash && slash >= 0) {
    const ref = u.slice(at + 1);
    return ref === '' ? { repository: u.slice(0, at).replace(/\.git$/, '') } : { repository: u.slice(0, at).replace(/\.git$/, ''), ref };
  }
  return { repository: u.replace(/\.git$/, '') };
}

/** `git+https://github.com/org/repo@refs/heads/main` → `https://github.com/org/repo`. */
export function repositoryFromUri(uri: unknown): string | undefined {
  return splitSourceUri(uri)?.repository;
}

function builderIdOf(predicate: unknown, predicateType: string): string {
  const id = predicateType === SLSA_PROVENANCE_V1 ? get(predicate, 'runDetails', 'builder', 'id') : get(predicate, 'builder', 'id');
  if (typeof id !== 'string' || id === '') throw new ProvenanceError('PROVENANCE_INVALID', 'provenance names no builder id');
  return id;
}

type Source = Pick<ProvenanceFacts, 'sourceRepository' | 'sourceCommit' | 'sourceRef'>;

function v1Source(predicate: unknown): Source {
  const deps = get(predicate, 'buildDefinition', 'resolvedDependencies');
  if (deps !== undefined && !Array.isArray(deps)) throw new ProvenanceError('PROVENANCE_INVALID', 'resolvedDependencies is not a list');
  const found: Array<{ repo?: string; ref?: string; commit: string }> = [];
  for (const [i, d] of (deps ?? []).entries()) {
    if (!isObject(d)) continue;
    const uri = d['uri'];
    let commit = commitValue(get(d, 'digest', 'gitCommit'), `resolvedDependencies[${i}].digest.gitCommit`);
    // Some generators record the commit as sha1 of a git+ dependency.
    if (commit === undefined && typeof uri === 'string' && uri.startsWith('git+')) {
      commit = commitValue(get(d, 'digest', 'sha1'), `resolvedDependencies[${i}].digest.sha1`);
    }
    if (commit === undefined) continue;
    const split = splitSourceUri(uri);
    found.push(
      split === undefined
        ? { commit }
        : split.ref === undefined
          ? { repo: split.repository, commit }
          : { repo: split.repository, ref: split.ref, commit },
    );
  }
  const distinct = new Set(found.map((f) => f.commit));
  if (distinct.size === 0) return {};
  let chosen = found;
  if (distinct.size > 1) {
    // Several git inputs: the source is the one in the repository the workflow came from (GitHub build type).
    const workflowRepo = repositoryFromUri(get(predicate, 'buildDefinition', 'externalParameters', 'workflow', 'repository'));
    chosen = workflowRepo === undefined ? [] : found.filter((f) => f.repo === workflowRepo);
    if (new Set(chosen.map((f) => f.commit)).size !== 1) {
      throw new ProvenanceError('PROVENANCE_SOURCE_AMBIGUOUS', 'provenance lists several git commits and none is clearly the source');
    }
  }
  const first = chosen[0]!;
  const out: Source = { sourceCommit: first.commit };
  if (first.repo !== undefined) out.sourceRepository = first.repo;
  // GitHub's build type records the ref of the run in the workflow parameters; the dependency URI may carry it too.
  const workflowRef = get(predicate, 'buildDefinition', 'externalParameters', 'workflow', 'ref');
  const ref = first.ref ?? (typeof workflowRef === 'string' && workflowRef !== '' ? workflowRef : undefined);
  if (ref !== undefined) out.sourceRef = ref;
  return out;
}

function v02Source(predicate: unknown): Source {
  const cs = get(predicate, 'invocation', 'configSource');
  if (!isObject(cs)) return {};
  const commit =
    commitValue(get(cs, 'digest', 'sha1'), 'invocation.configSource.digest.sha1') ??
    commitValue(get(cs, 'digest', 'gitCommit'), 'invocation.configSource.digest.gitCommit');
  const out: Source = {};
  const split = splitSourceUri(cs['uri']);
  if (split !== undefined) out.sourceRepository = split.repository;
  if (split?.ref !== undefined) out.sourceRef = split.ref;
  if (commit !== undefined) out.sourceCommit = commit;
  return out;
}

/** Reads builder and source from a SLSA v1 or v0.2 provenance statement; throws ProvenanceError when malformed. */
export function readProvenance(statement: Statement): ProvenanceFacts {
  const { predicateType, predicate } = statement;
  if (!SLSA_PROVENANCE_TYPES.has(predicateType))
    throw new ProvenanceError('PROVENANCE_INVALID', `${predicateType} is not an SLSA provenance type`);
  if (!isObject(predicate)) throw new ProvenanceError('PROVENANCE_INVALID', 'provenance predicate is not an object');
  const builderId = builderIdOf(predicate, predicateType);
  const source = predicateType === SLSA_PROVENANCE_V1 ? v1Source(predicate) : v02Source(predicate);
  return { predicateType, builderId, ...source };
}

const GITHUB_WORKFLOW_BUILDER = /^https:\/\/github\.com\/[^/]+\/[^/]+\/\.github\/workflows\/[^@]+@.+$/;

/**
 * A builder id that names a GitHub workflow must be the workflow that holds the signing certificate (its SAN, or the
 * build-signer URI for reusable workflows). Other builder ids (`https://github.com/actions/runner/github-hosted`, as
 * actions/attest-build-provenance writes) carry no workflow of their own; there the certificate identity, already
 * matched against the policy, is the trusted builder.
 */
export function builderMatchesSigner(builderId: string, signer: { identity?: string; buildSignerURI?: string }): boolean {
  if (!GITHUB_WORKFLOW_BUILDER.test(builderId)) return true;
  return builderId === signer.identity || builderId === signer.buildSignerURI;
}
