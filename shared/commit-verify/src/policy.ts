/**
 * Signer policies in one declarative format — the GatePolicy object (`gitops-gate.io/v1alpha1`) — for the CLI
 * (`--policy FILE`), the verifier (POLICY_FILE) and the Kubernetes objects the gate watches. Parsing validates
 * everything up front and names the field that is wrong; a policy that parses is compiled once (keys parsed,
 * patterns compiled) and reused for every commit.
 */

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parseAllowedSigners, type AllowedSigner } from './ssh/index.js';
import { createGpgKeyring, normalizeGpgFingerprint, type GpgKeyring } from './gpg/index.js';
import type { GitsignIdentityRule } from './gitsign/index.js';
import { CommitVerifyError } from './types.js';

const dateTime = z.iso.datetime({ offset: true });

const identityRule = z
  .object({
    identity: z.string().min(1).optional(),
    identityRegExp: z.string().min(1).optional(),
    issuer: z.string().url(),
  })
  .strict()
  .refine((r) => (r.identity === undefined) !== (r.identityRegExp === undefined), {
    message: 'exactly one of identity and identityRegExp is required',
  })
  .refine((r) => r.identityRegExp === undefined || isValidRegExp(r.identityRegExp), { message: 'identityRegExp is not a valid regular expression' });

function isValidRegExp(s: string): boolean {
  try {
    new RegExp(s, 'u');
    return true;
  } catch {
    return false;
  }
}

const gpgKey = z
  .object({
    fingerprint: z.string().refine((f) => normalizeGpgFingerprint(f) !== null, 'must be a full OpenPGP fingerprint (40 or 64 hex digits)'),
    /** The armored public key. */
    publicKey: z.string().includes('BEGIN PGP PUBLIC KEY BLOCK', { message: 'must be an armored OpenPGP public key' }),
    validFrom: dateTime.optional(),
    validUntil: dateTime.optional(),
    revoked: z.boolean().default(false),
  })
  .strict();

const imageRequirement = z
  .object({
    repository: z.string().min(1),
    keyless: z.array(identityRule).optional(),
    keys: z
      .array(z.object({ publicKeyPem: z.string(), validFrom: dateTime.optional(), validUntil: dateTime.optional(), revoked: z.boolean().default(false) }).strict())
      .optional(),
    requireProvenance: z.boolean().default(true),
    // Provenance counts only for builds of the policy's repository from its branches, or from these tags (globs).
    tags: z.array(z.string().min(1)).optional(),
    // Pull-request runs (forks' code, merge refs) and self-hosted runners vouch for nothing unless allowed here.
    allowPullRequestTriggers: z.boolean().default(false),
    allowSelfHostedRunners: z.boolean().default(false),
  })
  .strict();

export const gatePolicySpec = z
  .object({
    mode: z.enum(['Enforce', 'Audit']).default('Enforce'),
    selector: z
      .object({
        matchLabels: z.record(z.string(), z.string()).optional(),
        names: z.array(z.string()).optional(),
        namespaces: z.array(z.string()).optional(),
      })
      .strict()
      .default({}),
    repository: z.string().min(1),
    branches: z.array(z.string().min(1)).min(1),
    commits: z
      .object({
        // k-of-n over one commit is not meaningful: a commit carries exactly one signature. Two-person rules need a
        // second signed object (a signed tag or review attestation), which this version does not verify.
        requiredSigners: z.literal(1, { message: 'only 1 is supported: a commit carries one signature' }).default(1),
        gitsign: z.array(identityRule).optional(),
        ssh: z.object({ allowedSigners: z.string().min(1) }).strict().optional(),
        gpg: z.array(gpgKey).optional(),
      })
      .strict()
      .refine((c) => (c.gitsign?.length ?? 0) > 0 || c.ssh !== undefined || (c.gpg?.length ?? 0) > 0, {
        message: 'at least one of gitsign, ssh or gpg signers is required (an empty policy would trust nobody)',
      }),
    images: z.array(imageRequirement).optional(),
  })
  .strict();

export const gatePolicyObject = z.object({
  apiVersion: z.literal('gitops-gate.io/v1alpha1'),
  kind: z.literal('GatePolicy'),
  metadata: z.object({ name: z.string().min(1), namespace: z.string().optional(), generation: z.number().int().optional() }).passthrough(),
  spec: gatePolicySpec,
});

export type GatePolicyObject = z.infer<typeof gatePolicyObject>;
export type GatePolicySpec = z.infer<typeof gatePolicySpec>;

export interface GpgKeyRule {
  fingerprint: string;
  validFrom?: Date;
  validUntil?: Date;
  revoked: boolean;
}

/** The commit-signature part of a policy, compiled: what `verifyCommit` needs. */
export interface CommitPolicy {
  name: string;
  /** sha256 over the policy's commit rules: equal fingerprints give equal verdicts (verdict cache key). */
  fingerprint?: string;
  ssh?: { allowedSigners: AllowedSigner[] };
  gitsign?: { identities: GitsignIdentityRule[] };
  gpg?: { keyring: GpgKeyring; keys: GpgKeyRule[] };
}

export interface CompiledPolicy {
  name: string;
  namespace?: string;
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

/** Validates one GatePolicy object (from a file or the Kubernetes API); throws POLICY_INVALID naming the field. */
export async function compilePolicy(obj: unknown, where = 'policy'): Promise<CompiledPolicy> {
  const parsed = gatePolicyObject.safeParse(obj);
  if (!parsed.success) throw new CommitVerifyError('POLICY_INVALID', describe(parsed.error, where));
  const { metadata, spec } = parsed.data;
  const name = metadata.namespace ? `${metadata.namespace}/${metadata.name}` : metadata.name;
  const commit: CommitPolicy = { name, fingerprint: createHash('sha256').update(JSON.stringify([name, spec.commits])).digest('hex') };
  if (spec.commits.ssh) {
    try {
      commit.ssh = { allowedSigners: parseAllowedSigners(spec.commits.ssh.allowedSigners, `${where} spec.commits.ssh.allowedSigners`) };
    } catch (err) {
      throw new CommitVerifyError('POLICY_INVALID', (err as Error).message);
    }
  }
  if (spec.commits.gitsign?.length) commit.gitsign = { identities: spec.commits.gitsign };
  if (spec.commits.gpg?.length) {
    let keyring: GpgKeyring;
    try {
      keyring = await createGpgKeyring(spec.commits.gpg.map((k) => k.publicKey));
    } catch (err) {
      throw new CommitVerifyError('POLICY_INVALID', `${where} spec.commits.gpg: ${(err as Error).message}`);
    }
    const keys = spec.commits.gpg.map((k, i) => {
      const fp = normalizeGpgFingerprint(k.fingerprint)!;
      if (!keyring.byFingerprint.has(fp)) {
        throw new CommitVerifyError('POLICY_INVALID', `${where} spec.commits.gpg.${i}: publicKey does not contain key ${fp}`);
      }
      return { fingerprint: fp, validFrom: k.validFrom ? new Date(k.validFrom) : undefined, validUntil: k.validUntil ? new Date(k.validUntil) : undefined, revoked: k.revoked };
    });
    commit.gpg = { keyring, keys };
  }
  return {
    name,
    namespace: metadata.namespace,
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
    throw new CommitVerifyError('POLICY_INVALID', `${source}: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (docs.length === 0) throw new CommitVerifyError('POLICY_INVALID', `${source}: no GatePolicy documents`);
  const out: CompiledPolicy[] = [];
  for (const [i, d] of docs.entries()) out.push(await compilePolicy(d, `${source}[${i}]`));
  const names = new Set<string>();
  for (const p of out) {
    if (names.has(p.name)) throw new CommitVerifyError('POLICY_INVALID', `${source}: two policies named ${p.name}`);
    names.add(p.name);
  }
  return out;
}


