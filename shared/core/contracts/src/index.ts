import { createHash } from 'node:crypto';
/**
 * Job contracts between the services. Every payload carries a `v` version so a rolling upgrade can tell an old
 * producer's job from a new one; consumers parse with these schemas and fail a malformed job permanently (it can
 * never become valid by retrying).
 */
import { z } from 'zod';

export const QUEUE_VERIFY = 'verify';
export const QUEUE_GATE = 'gate';

const sha = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'must be a full lower-case hex commit SHA');
const deliveryId = z.string().regex(/^[A-Za-z0-9-]{1,100}$/, 'must be a GitHub delivery id');

/** Trace context carried through the queue (W3C traceparent/tracestate), so one delivery is one trace. */
export const traceCarrier = z.record(z.string(), z.string()).optional();

/** The commit a job is about, as the push named it: shared by verify jobs and commit verdicts. */
const commitRef = {
  v: z.literal(1),
  deliveryId,
  /** Canonical repository URL (see normalizeRepoUrl). */
  repoUrl: z.string().min(1),
  /** Clone URL as GitHub sent it (what the verifier fetches, after URL rewrites). */
  cloneUrl: z.string().min(1),
  repoFullName: z.string().min(1),
  branch: z.string().min(1),
  sha,
};

export const verifyCommitJob = z.object({
  ...commitRef,
  kind: z.literal('commit'),
  /** The branch head before the push; all zeros for a new branch. */
  before: z.string().optional(),
  forced: z.boolean().default(false),
  receivedAt: z.string(),
  /** Set when the gate asks again because policies changed: the policy revision it needs a verdict for. */
  reverify: z.string().optional(),
  trace: traceCarrier,
});
export type VerifyCommitJob = z.infer<typeof verifyCommitJob>;

export const verifyImageJob = z.object({
  v: z.literal(1),
  kind: z.literal('image'),
  deliveryId,
  repoUrl: z.string().min(1),
  repoFullName: z.string().min(1),
  /** e.g. ghcr.io/org/app */
  image: z.string().min(1),
  /** sha256:<hex> of the published manifest. */
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  tags: z.array(z.string()).default([]),
  receivedAt: z.string(),
  trace: traceCarrier,
});
export type VerifyImageJob = z.infer<typeof verifyImageJob>;

export const verifyJob = z.discriminatedUnion('kind', [verifyCommitJob, verifyImageJob]);
export type VerifyJob = z.infer<typeof verifyJob>;

export const signerSchema = z.object({
  identity: z.string(),
  issuer: z.string().optional(),
  keyFingerprint: z.string().optional(),
  logIndex: z.string().optional(),
  signedAt: z.string().optional(),
});

/** Which Applications a policy governs (GatePolicy spec.selector); empty = every Application tracking the branch. */
export const policySelectorSchema = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  names: z.array(z.string()).optional(),
  namespaces: z.array(z.string()).optional(),
});
export type PolicySelector = z.infer<typeof policySelectorSchema>;

/** One governing policy's own result for a commit, carried to the gate so it can decide per Application. */
export const policyResultSchema = z.object({
  /** The policy's display name: `namespace/name` for a GatePolicy, `name` for a ClusterGatePolicy or file policy. */
  name: z.string(),
  /**
   * Which object: a namespaced GatePolicy (selects Applications of its own namespace only), a cluster-scoped
   * ClusterGatePolicy (selects across namespaces), or a policy file of the verifier/CLI.
   */
  scope: z.enum(['Namespaced', 'Cluster', 'File']).default('Namespaced'),
  namespace: z.string().optional(),
  /** metadata.uid: a policy deleted and re-created under the same name starts again at generation 1. */
  uid: z.string().optional(),
  /** metadata.generation of the GatePolicy object the result was computed with (absent for file policies). */
  generation: z.number().int().optional(),
  mode: z.enum(['Enforce', 'Audit']),
  selector: policySelectorSchema.default({}),
  ok: z.boolean(),
  code: z.string(),
  reason: z.string().optional(),
  signer: z.string().optional(),
});
export type PolicyResult = z.infer<typeof policyResultSchema>;

/** The fields that name one generation of one policy object. */
export type PolicyIdentity = Pick<PolicyResult, 'scope' | 'namespace' | 'name' | 'uid' | 'generation'>;

/**
 * One string per policy object generation, for comparing a verdict's results with the policies live now: a result
 * counts only when the same object (scope, namespace, name, uid) at the same generation is still in force.
 */
export function policyKey(p: PolicyIdentity): string {
  return `${p.scope}/${p.namespace ?? ''}/${p.name}/${p.uid ?? ''}@${p.generation ?? ''}`;
}

/**
 * What the verifier concluded about one commit; the gate acts only on `outcome: 'verified'`. `deferred`: transient
 * trouble (commit not fetchable yet, git host or Rekor unreachable) outlasted the job's retries — no final verdict,
 * `code` names the cause; per-policy results that are final are still carried.
 */
export const commitVerdictJob = z.object({
  ...commitRef,
  kind: z.literal('commit-verdict'),
  outcome: z.enum(['verified', 'rejected', 'deferred']),
  method: z.enum(['ssh', 'gitsign', 'gpg', 'none']),
  signer: signerSchema.optional(),
  /** Stable code of the rejection (or of the matched rule on accept). */
  code: z.string(),
  reasons: z.array(z.string()),
  /** Name of the policy rule that matched, or why none did. */
  rule: z.string().optional(),
  /** Every policy that governs the branch, with its own result (Audit policies included). */
  policies: z.array(policyResultSchema).default([]),
  verifiedAt: z.string(),
  /**
   * The newest commits reachable from sha (sha first), from the verifier's mirror: lets the gate answer "does this
   * descend from the pinned commit?" without fetching, in the common case of a recent pin.
   */
  ancestors: z.array(sha).max(1000).default([]),
  /**
   * The branch proof, read by the verifier from the followed repository itself (never from the webhook): the head of
   * `refs/heads/<branch>` (null: the branch does not exist) and whether sha is that head or an ancestor of it. The gate
   * pins nothing without `onBranch: true` (a verdict from an older verifier has no proof).
   */
  branchHead: sha.nullable().optional(),
  onBranch: z.boolean().optional(),
  reverify: z.string().optional(),
  trace: traceCarrier,
});
export type CommitVerdictJob = z.infer<typeof commitVerdictJob>;

/** BullMQ custom job ids may not contain ':'; GitHub delivery ids are UUIDs. */
export function verifyJobId(deliveryId: string): string {
  return `gh-${deliveryId}`;
}

/**
 * A delivery id is chosen by whoever sends the delivery, and a per-repository secret holder can send any id: so an id
 * alone must never decide that a job is a duplicate. The repository is part of every id derived from one, so a
 * delivery for one repository can never take the place of another repository's verdict.
 */
export function repoTag(repoUrl: string): string {
  return createHash('sha256').update(repoUrl).digest('hex').slice(0, 12);
}

/** The verdict's BullMQ job id: one per (delivery, repository, branch, commit, re-verification). */
export function verdictJobId(v: {
  deliveryId: string;
  sha: string;
  repoUrl: string;
  branch: string;
  reverify?: string | undefined;
}): string {
  // The branch too: a per-repository secret has its own claim space, so the same delivery id can reach the verifier
  // for the same repository and commit on another branch; a shared id would let BullMQ drop one of the two verdicts.
  const scope = createHash('sha256').update(`${v.repoUrl}\0${v.branch}`).digest('hex').slice(0, 12);
  const base = `verdict-${v.deliveryId}-${scope}-${v.sha}`;
  return v.reverify ? `${base}-${v.reverify}` : base;
}

export function imageVerdictJobId(deliveryId: string, digest: string, repoUrl: string): string {
  return `image-${deliveryId}-${repoTag(repoUrl)}-${digest.replace(/^sha256:/, '').slice(0, 16)}`;
}

/**
 * One spelling per repository, so a webhook's `https://github.com/Org/Repo` matches an Application's
 * `git@github.com:org/repo.git`, `ssh://git@github.com/org/repo`, or `https://github.com/org/repo/`.
 * Host and path compare case-insensitively (GitHub's are case-insensitive); other hosts keep path case.
 */
/**
 * Where a git credential may be sent: `github.com` → `https://github.com/`; a URL prefix stays as written (with a trailing slash).
 */
export function credentialPrefix(entry: string): string {
  const e = entry.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e)) return e.endsWith('/') ? e : `${e}/`;
  return `https://${e.replace(/\/+$/, '')}/`;
}

export function normalizeRepoUrl(url: string): string {
  let s = url.trim();
  const scp = /^([A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!\/\/)(.+)$/.exec(s);
  let host: string;
  let path: string;
  if (scp && !/^[a-z]+:\/\//i.test(s)) {
    host = scp[2] ?? '';
    path = scp[3] ?? '';
  } else {
    try {
      const u = new URL(s);
      if (u.protocol === 'file:') return `file://${u.pathname.replace(/\/+$/, '').replace(/\.git$/, '')}`;
      host = u.hostname;
      // Default ports are dropped by URL; keep explicit non-default ones (self-hosted servers).
      if (u.port) host = `${host}:${u.port}`;
      path = u.pathname;
    } catch {
      return s.replace(/\/+$/, '').replace(/\.git$/, '');
    }
  }
  host = host.toLowerCase();
  path = path
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  if (host === 'github.com' || host === 'www.github.com') {
    host = 'github.com';
    path = path.toLowerCase();
  }
  s = `https://${host}/${path}`;
  return s;
}

/**
 * The GatePolicy objects the gate has validated, published in Redis for the verifiers (which have no Kubernetes
 * access). `revision` changes on every publish so readers recompile only when something changed.
 */
export const policySnapshotSchema = z.object({
  revision: z.string(),
  policies: z.array(z.record(z.string(), z.unknown())),
});
export type PolicySnapshot = z.infer<typeof policySnapshotSchema>;
export const policySnapshotKey = (prefix: string): string => `${prefix}:policies`;

/**
 * The repositories the gate follows, published by the gate in Redis from the opted-in Applications it watches: the
 * receiver queues pushes only for these, and the verifier fetches only these, from `fetchUrl` (the Application's own
 * repoURL), never from a webhook's clone_url. `refused` names why a followed repository is not fetched at all (its
 * host is not one the credentials are for, and anonymous fetches are off).
 */
export const followedRepoSchema = z.object({
  /** normalizeRepoUrl of the Applications' repoURL. */
  repoUrl: z.string().min(1),
  fetchUrl: z.string().min(1),
  branches: z.array(z.string()),
  refused: z.string().optional(),
});
export type FollowedRepo = z.infer<typeof followedRepoSchema>;
export const followedReposSchema = z.object({
  publishedAt: z.string(),
  repos: z.array(followedRepoSchema),
});
export type FollowedRepos = z.infer<typeof followedReposSchema>;
export const followedReposKey = (prefix: string): string => `${prefix}:followed-repos`;

/** What the verifier concluded about one published image (signatures and SLSA provenance). */
export const imageVerdictJob = z.object({
  v: z.literal(1),
  kind: z.literal('image-verdict'),
  deliveryId,
  repoUrl: z.string().min(1),
  image: z.string().min(1),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  ok: z.boolean(),
  code: z.string(),
  reason: z.string().optional(),
  /** The commit the verified provenance says the image was built from (absent when no provenance verified). */
  sourceCommit: sha.optional(),
  builder: z.string().optional(),
  signer: z.string().optional(),
  policy: z.string().optional(),
  /**
   * Each policy that has a rule for this image, with its own result (same identity fields as commit verdicts): the
   * gate counts an image verdict only under the live generation of every Enforce policy selecting the Application.
   */
  policies: z.array(policyResultSchema).default([]),
  /** Transient registry trouble outlasted the job's retries: no verdict about the image (`ok` is false, `code` the cause). */
  deferred: z.boolean().optional(),
  verifiedAt: z.string(),
  trace: traceCarrier,
});
export type ImageVerdictJob = z.infer<typeof imageVerdictJob>;

export const gateJob = z.discriminatedUnion('kind', [commitVerdictJob, imageVerdictJob]);
export type GateJob = z.infer<typeof gateJob>;
