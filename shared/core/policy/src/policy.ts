/**
 * Signer policies in one declarative format — the GatePolicy object (`gitops-gate.io/v1alpha1`) — for the CLI
 * (`--policy FILE`), the verifier (POLICY_FILE) and the Kubernetes objects the gate watches. Parsing validates
 * everything up front and names the field that is wrong; a policy that parses is compiled once (keys parsed,
 * patterns compiled) and reused for every commit.
 */

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { POLICY_FIELD_DESCRIPTIONS } from './policy-text.js';
import {
  createGpgKeyring,
  normalizeGpgFingerprint,
  parseAllowedSigners,
  parseRevocationList,
  type CommitPolicy,
  type GpgKeyring,
} from '@gitops-gate/commit-verify';
import { PolicyError } from './errors.js';

const dateTime = z.iso.datetime({ offset: true });

/*
 * The one model of a GatePolicy spec. The CRDs (deploy/base/crds/*.yaml) are generated from it (`npm run gen:crds`,
 * see crd.ts), so a real API server prunes, defaults and validates exactly what this parser reads:
 *  - lengths (`.max`) bound both the parser and the CEL cost the API server estimates;
 *  - `.meta({...})` carries what only the API server checks: `x-kubernetes-validations` (CEL rules that mirror the
 *    refinements below), list types, and patterns the CRD is stricter on than file policies (e.g. `repository: '*'`
 *    is fine in an internal policy but not in a GatePolicy object). The CRD may be stricter, never looser;
 *  - defaults are written into the object by the API server, so they must be the parser's defaults (the safe ones).
 */
const celRule = (rule: string, message: string) => ({ rule, message });
const setList = { 'x-kubernetes-list-type': 'set' } as const;

const IDENTITY_RULES = [
  celRule('has(self.identity) != has(self.identityRegExp)', 'exactly one of identity or identityRegExp must be set'),
  celRule(
    "!has(self.identityRegExp) || (self.identityRegExp.startsWith('^') && self.identityRegExp.endsWith('$'))",
    'identityRegExp must be anchored with ^ and $',
  ),
];

const identityRule = z
  .object({
    identity: z.string().min(1).max(1024).describe('Exact certificate identity (email or workflow URI).').optional(),
    identityRegExp: z.string().min(2).max(1024).describe('Regular expression over the identity, anchored with ^ and $.').optional(),
    issuer: z
      .string()
      .url()
      .max(1024)
      .describe('OIDC issuer of the identity, e.g. https://token.actions.githubusercontent.com.')
      .meta({ pattern: '^https://' }),
  })
  .strict()
  .refine((r) => (r.identity === undefined) !== (r.identityRegExp === undefined), {
    message: 'exactly one of identity and identityRegExp is required',
  })
  .refine((r) => r.identityRegExp === undefined || isValidRegExp(r.identityRegExp), {
    message: 'identityRegExp is not a valid regular expression',
  })
  .describe('One signer identity; exactly one of identity and identityRegExp.')
  .meta({ 'x-kubernetes-validations': IDENTITY_RULES });

function isValidRegExp(s: string): boolean {
  try {
    new RegExp(s, 'u');
    return true;
  } catch {
    return false;
  }
}

const VALIDITY_RULES = [
  celRule('!has(self.validFrom) || !has(self.validUntil) || self.validFrom < self.validUntil', 'validFrom must be before validUntil'),
];

const gpgKey = z
  .object({
    fingerprint: z
      .string()
      .max(64)
      .regex(/^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/, 'must be a full OpenPGP fingerprint (40 or 64 hex digits)')
      .describe('Full OpenPGP fingerprint of the (sub)key: 40 hex digits (v4) or 64 (v5/v6).'),
    publicKey: z
      .string()
      .max(65536)
      .includes('BEGIN PGP PUBLIC KEY BLOCK', { message: 'must be an armored OpenPGP public key' })
      .describe('The armored OpenPGP public key that contains the fingerprint.'),
    validFrom: dateTime.optional(),
    validUntil: dateTime.optional(),
    revoked: z.boolean().default(false),
  })
  .strict()
  .meta({ 'x-kubernetes-validations': VALIDITY_RULES });

const imageRequirement = z
  .object({
    repository: z
      .string()
      .min(1)
      .max(512)
      .describe('Image repository without tag or digest, e.g. ghcr.io/org/app.')
      .meta({ pattern: '^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$' }),
    keyless: z
      .array(identityRule)
      .max(64)
      .describe('Trusted builder identities (e.g. the release workflow) for keyless signatures.')
      .optional(),
    keys: z
      .array(
        z
          .object({
            publicKeyPem: z.string().max(16384).meta({ pattern: '^\\s*-----BEGIN PUBLIC KEY-----' }),
            validFrom: dateTime.optional(),
            validUntil: dateTime.optional(),
            revoked: z.boolean().default(false),
          })
          .strict()
          .meta({ 'x-kubernetes-validations': VALIDITY_RULES }),
      )
      .max(64)
      .optional(),
    // Default true in the parser and (generated) in the CRD: the API server writes the default into the object, so
    // an omitted field means "provenance required" everywhere.
    requireProvenance: z
      .boolean()
      .default(true)
      .describe('Also require a verified SLSA provenance attestation from a keyless identity (default true).'),
    tags: z
      .array(z.string().min(1).max(255))
      .max(64)
      .describe('Tags (globs) whose builds may vouch for a commit, besides the policy branches.')
      .optional(),
    allowPullRequestTriggers: z
      .boolean()
      .default(false)
      .describe("Let builds triggered by pull_request / pull_request_target (forks' code, merge refs) vouch for a commit (default false)."),
    allowSelfHostedRunners: z.boolean().default(false).describe('Let builds on self-hosted runners vouch for a commit (default false).'),
  })
  .strict()
  .refine((r) => !r.requireProvenance || (r.keyless?.length ?? 0) > 0, {
    message: 'requireProvenance (default true) needs a keyless builder identity; set requireProvenance: false for key-only images',
  })
  .meta({
    'x-kubernetes-validations': [
      celRule(
        '(has(self.keyless) && size(self.keyless) > 0) || (has(self.keys) && size(self.keys) > 0)',
        'an image needs at least one keyless identity or key',
      ),
      celRule(
        '!self.requireProvenance || (has(self.keyless) && size(self.keyless) > 0)',
        'requireProvenance needs a keyless builder identity',
      ),
    ],
  });

export const gatePolicySpec = z
  .object({
    mode: z.enum(['Enforce', 'Audit']).default('Enforce').describe(POLICY_FIELD_DESCRIPTIONS.mode),
    selector: z
      .object({
        matchLabels: z.record(z.string(), z.string().max(63)).meta({ maxProperties: 64 }).optional(),
        names: z.array(z.string().min(1).max(253)).max(256).meta(setList).optional(),
        namespaces: z.array(z.string().min(1).max(63)).max(256).meta(setList).optional(),
      })
      .strict()
      .default({})
      .describe(POLICY_FIELD_DESCRIPTIONS.selector),
    repository: z
      .string()
      .min(1)
      .max(2048)
      .describe('Normalised repository URL: https://host/owner/repo (lower case for github.com), no trailing slash, no .git suffix.')
      .meta({
        pattern: '^(https://[^/\\s]+/[^\\s]+|file:///[^\\s]+)$',
        'x-kubernetes-validations': [
          celRule("!self.endsWith('/') && !self.endsWith('.git')", 'repository must be normalised (no trailing slash, no .git suffix)'),
        ],
      }),
    branches: z.array(z.string().min(1).max(255)).min(1).max(64).describe('Branches whose verified commits may be pinned.').meta(setList),
    commits: z
      .object({
        // k-of-n over one commit is not meaningful: a commit carries exactly one signature. Two-person rules need a
        // second signed object (a signed tag or review attestation), which this version does not verify.
        requiredSigners: z
          .literal(1, { message: 'only 1 is supported: a commit carries one signature' })
          .default(1)
          .describe('Signatures a commit needs: only 1 is supported (a commit carries one signature).')
          .meta({ type: 'integer' }),
        gitsign: z
          .array(identityRule)
          .max(64)
          .describe('Sigstore keyless (gitsign) signers, matched on the Fulcio certificate.')
          .optional(),
        ssh: z
          .object({
            allowedSigners: z.string().min(1).max(65536).describe('Contents of a git allowed_signers file.'),
            revokedKeys: z
              .string()
              .min(1)
              .max(262144)
              .describe(
                "Revoked SSH keys (as git's gpg.ssh.revocationFile): public keys one per line, or an OpenSSH KRL (ssh-keygen -k) base64-encoded. A revoked key, CA, certificate serial or key id verifies nothing, whatever the date.",
              )
              .optional(),
            requireUserPresence: z
              .boolean()
              .describe(
                'Security-key (sk-*) signatures must carry the user-presence (touch) flag. Stricter than git, which ignores the flags.',
              )
              .optional(),
            requireUserVerification: z
              .boolean()
              .describe(
                'Signatures must carry the user-verification (PIN/biometric) flag; only security keys (sk-*) can. Stricter than git.',
              )
              .optional(),
          })
          .strict()
          .optional(),
        gpg: z
          .array(gpgKey)
          .max(64)
          .describe('OpenPGP signers; a retired key verifies what it signed before validUntil, a revoked one nothing.')
          .optional(),
      })
      .strict()
      .refine((c) => (c.gitsign?.length ?? 0) > 0 || c.ssh !== undefined || (c.gpg?.length ?? 0) > 0, {
        message: 'at least one of gitsign, ssh or gpg signers is required (an empty policy would trust nobody)',
      })
      .describe('Who may sign commits. At least one of gitsign, ssh, gpg.')
      .meta({
        'x-kubernetes-validations': [
          celRule(
            '(has(self.gitsign) && size(self.gitsign) > 0) || has(self.ssh) || (has(self.gpg) && size(self.gpg) > 0)',
            'commits needs at least one of gitsign, ssh or gpg',
          ),
        ],
      }),
    images: z
      .array(imageRequirement)
      .max(64)
      .describe('Images the governed Applications require; each must be signed as listed.')
      .optional(),
  })
  .strict();

/**
 * A GatePolicy (namespaced: a tenant's object, selects Applications of its own namespace only) or a ClusterGatePolicy
 * (cluster-scoped, admin RBAC: selects across namespaces). Same spec.
 */
export const gatePolicyObject = z.object({
  apiVersion: z.literal('gitops-gate.io/v1alpha1'),
  kind: z.enum(['GatePolicy', 'ClusterGatePolicy']),
  metadata: z
    .object({
      name: z.string().min(1),
      namespace: z.string().optional(),
      uid: z.string().optional(),
      generation: z.number().int().optional(),
    })
    .passthrough(),
  spec: gatePolicySpec,
});

/** Where a policy comes from: a watched object of either kind, or an operator's file (CLI, POLICY_FILE). */
export type PolicyScope = 'Namespaced' | 'Cluster' | 'File';

export type GatePolicyObject = z.infer<typeof gatePolicyObject>;
export type GatePolicySpec = z.infer<typeof gatePolicySpec>;

export interface CompiledPolicy {
  /** `namespace/name` for a GatePolicy object, `name` for a ClusterGatePolicy or a file policy. */
  name: string;
  scope: PolicyScope;
  namespace?: string;
  uid?: string;
  generation?: number;
  mode: 'Enforce' | 'Audit';
  repository: string;
  branches: string[];
  selector: GatePolicySpec['selector'];
  commit: CommitPolicy;
  images: NonNullable<GatePolicySpec['images']>;
  spec: GatePolicySpec;
}

function describe(err: z.ZodError, where: string): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${where}${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`)
    .join('; ');
}

/**
 * Validates one GatePolicy or ClusterGatePolicy object (from a file or the Kubernetes API); throws POLICY_INVALID
 * naming the field. `source: 'file'` (the default: CLI, POLICY_FILE) marks an operator's file policy (scope File, may
 * select across namespaces); for `'object'` (watched from the API) the kind decides: a GatePolicy is Namespaced (and
 * must have a namespace), a ClusterGatePolicy is Cluster.
 */
export async function compilePolicy(obj: unknown, where = 'policy', source: 'object' | 'file' = 'file'): Promise<CompiledPolicy> {
  const parsed = gatePolicyObject.safeParse(obj);
  if (!parsed.success) throw new PolicyError('POLICY_INVALID', describe(parsed.error, where));
  const { kind, metadata, spec } = parsed.data;
  const scope: PolicyScope = source === 'file' ? 'File' : kind === 'ClusterGatePolicy' ? 'Cluster' : 'Namespaced';
  if (scope === 'Namespaced' && !metadata.namespace)
    throw new PolicyError('POLICY_INVALID', `${where}.metadata.namespace: a GatePolicy object needs its namespace`);
  // A ClusterGatePolicy has no namespace, whatever its metadata says: it must not pose as a tenant's object.
  const namespace = scope === 'Cluster' ? undefined : metadata.namespace;
  const name = namespace ? `${namespace}/${metadata.name}` : metadata.name;
  const commit: CommitPolicy = {
    name,
    fingerprint: createHash('sha256')
      .update(JSON.stringify([name, spec.commits]))
      .digest('hex'),
  };
  if (spec.commits.ssh) {
    const ssh = spec.commits.ssh;
    try {
      commit.ssh = { allowedSigners: parseAllowedSigners(ssh.allowedSigners, `${where} spec.commits.ssh.allowedSigners`) };
      if (ssh.revokedKeys !== undefined)
        commit.ssh.revoked = [parseRevocationList(ssh.revokedKeys, `${where} spec.commits.ssh.revokedKeys`)];
      if (ssh.requireUserPresence) commit.ssh.requireUserPresence = true;
      if (ssh.requireUserVerification) commit.ssh.requireUserVerification = true;
    } catch (err) {
      throw new PolicyError('POLICY_INVALID', (err as Error).message);
    }
  }
  if (spec.commits.gitsign?.length) commit.gitsign = { identities: spec.commits.gitsign };
  if (spec.commits.gpg?.length) {
    let keyring: GpgKeyring;
    try {
      keyring = await createGpgKeyring(spec.commits.gpg.map((k) => k.publicKey));
    } catch (err) {
      throw new PolicyError('POLICY_INVALID', `${where} spec.commits.gpg: ${(err as Error).message}`);
    }
    const keys = spec.commits.gpg.map((k, i) => {
      const fp = normalizeGpgFingerprint(k.fingerprint)!;
      if (!keyring.byFingerprint.has(fp)) {
        throw new PolicyError('POLICY_INVALID', `${where} spec.commits.gpg.${i}: publicKey does not contain key ${fp}`);
      }
      return {
        fingerprint: fp,
        validFrom: k.validFrom ? new Date(k.validFrom) : undefined,
        validUntil: k.validUntil ? new Date(k.validUntil) : undefined,
        revoked: k.revoked,
      };
    });
    commit.gpg = { keyring, keys };
  }
  return {
    name,
    scope,
    namespace,
    uid: metadata.uid,
    generation: metadata.generation,
    mode: spec.mode,
    repository: spec.repository,
    branches: spec.branches,
    selector: spec.selector,
    commit,
    images: spec.images ?? [],
    spec,
  };
}

/** Reads a policy file: YAML (one or more `---` documents) or JSON (an object or a list). */
export async function parsePolicyFile(text: string, source = 'policy file'): Promise<CompiledPolicy[]> {
  let docs: unknown[];
  try {
    const trimmed = text.trimStart();
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
      const json: unknown = JSON.parse(text);
      docs = Array.isArray(json) ? json : [json];
    } else {
      docs = [];
      const { loadAll } = await import('js-yaml');
      loadAll(text, (d) => {
        if (d !== null && d !== undefined) docs.push(d);
      });
    }
  } catch (err) {
    throw new PolicyError('POLICY_INVALID', `${source}: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (docs.length === 0) throw new PolicyError('POLICY_INVALID', `${source}: no GatePolicy documents`);
  const out: CompiledPolicy[] = [];
  for (const [i, d] of docs.entries()) out.push(await compilePolicy(d, `${source}[${i}]`));
  const names = new Set<string>();
  for (const p of out) {
    if (names.has(p.name)) throw new PolicyError('POLICY_INVALID', `${source}: two policies named ${p.name}`);
    names.add(p.name);
  }
  return out;
}
