import { createHash } from 'node:crypto';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { readFileSync } from 'node:fs';
import { createRekorClient, parseAllowedSigners, type VerifyEnvironment } from '@gitops-gate/commit-verify';
import { compilePolicy, evaluatePolicies, parsePolicyFile, policiesFor, type CompiledPolicy } from '@gitops-gate/policy';
import { ConfigError, type Config } from '@gitops-gate/config';
import { normalizeRepoUrl, policySnapshotKey, policySnapshotSchema } from '@gitops-gate/contracts';
import type { Logger } from '@gitops-gate/telemetry';
import type { Redis } from 'ioredis';
import type { CommitVerifierFn, PolicySource } from './checks.js';
import type { VerdictCache } from './verdict-cache.js';

function read(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/**
 * Policies and trust material, loaded once at start-up. POLICY_FILE holds GatePolicy documents; without it,
 * ALLOWED_SIGNERS_FILE alone becomes one policy trusting those SSH keys for every repository and branch.
 */
export async function loadCommitPolicies(config: Config): Promise<CompiledPolicy[]> {
  if (config.POLICY_FILE) {
    try {
      return await parsePolicyFile(read(config.POLICY_FILE, 'POLICY_FILE'), config.POLICY_FILE);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`POLICY_FILE: ${(err as Error).message}`);
    }
  }
  if (config.ALLOWED_SIGNERS_FILE) {
    const text = read(config.ALLOWED_SIGNERS_FILE, 'ALLOWED_SIGNERS_FILE');
    try {
      parseAllowedSigners(text, config.ALLOWED_SIGNERS_FILE);
    } catch (err) {
      throw new ConfigError(`ALLOWED_SIGNERS_FILE: ${(err as Error).message}`);
    }
    return [
      await compilePolicy({
        apiVersion: 'gitops-gate.io/v1alpha1',
        kind: 'GatePolicy',
        metadata: { name: 'allowed-signers' },
        spec: { repository: '*', branches: ['*'], commits: { ssh: { allowedSigners: text } } },
      }),
    ];
  }
  return [];
}

/**
 * GatePolicy objects reach verifiers through Redis (the gate watches them; verifiers have no Kubernetes access).
 * One GET per job; compiling happens only when the published revision changes.
 */
export function createPolicySource(redis: Redis, prefix: string, filePolicies: CompiledPolicy[], logger: Logger): PolicySource {
  let cached: { revision: string; policies: CompiledPolicy[] } = { revision: '', policies: [] };
  return {
    async current() {
      const raw = await redis.get(policySnapshotKey(prefix));
      if (raw === null) return filePolicies;
      const snap = policySnapshotSchema.safeParse(JSON.parse(raw));
      if (!snap.success) {
        // Fail closed on a corrupt snapshot: only file policies (often none → default deny).
        logger.error({ issues: snap.error.issues.slice(0, 2) }, 'policy snapshot unreadable');
        return filePolicies;
      }
      if (snap.data.revision !== cached.revision) {
        const compiled: CompiledPolicy[] = [];
        for (const obj of snap.data.policies) {
          try {
            // Published objects keep their identity (kind → scope, namespace, uid, generation) for the gate's checks.
            compiled.push(
              await compilePolicy(obj, `${String(obj.kind)} ${String((obj.metadata as { name?: unknown } | undefined)?.name)}`, 'object'),
            );
          } catch (err) {
            logger.error({ err: (err as Error).message }, 'published policy does not compile');
          }
        }
        cached = { revision: snap.data.revision, policies: compiled };
        logger.info(
          { revision: snap.data.revision, policies: compiled.map((p) => `${p.name}@${p.generation ?? '-'}`) },
          'policies reloaded',
        );
      }
      return [...cached.policies, ...filePolicies];
    },
  };
}

export function loadVerifyEnvironment(config: Config): VerifyEnvironment {
  let trustedRoot: object | undefined;
  if (config.TRUSTED_ROOT_FILE) {
    try {
      trustedRoot = JSON.parse(read(config.TRUSTED_ROOT_FILE, 'TRUSTED_ROOT_FILE')) as object;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`TRUSTED_ROOT_FILE: not valid JSON: ${(err as Error).message}`);
    }
  }
  return {
    trust: createBundleTrust(trustedRoot),
    rekor: config.REKOR_URL ? createRekorClient({ url: config.REKOR_URL }) : undefined,
  };
}

/**
 * What, besides the commit bytes and the policy, decides a verdict in this process: the trust root and whether (and
 * where) Rekor is asked for signatures without an embedded log entry. Verdicts and in-flight verifications are shared
 * between replicas only when this matches, so a replica configured without Rekor (whose rejection is "no log entry")
 * never answers for one that has it, and a replica on another trust root never answers at all.
 */
export function verifyEnvironmentRevision(env: VerifyEnvironment, rekorUrl: string | undefined): string {
  return createHash('sha256')
    .update(JSON.stringify({ trust: env.trust?.json ?? null, rekor: env.rekor ? (rekorUrl ?? 'configured') : null }))
    .digest('hex');
}

export function createCommitChecker(source: PolicySource, env: VerifyEnvironment, cache?: VerdictCache): CommitVerifierFn {
  return async (raw, job) => {
    const policies = await source.current();
    return evaluatePolicies(
      raw,
      policiesFor(policies, job.repoUrl, job.branch, normalizeRepoUrl),
      { expectedSha: job.sha, env },
      cache?.verify,
    );
  };
}
