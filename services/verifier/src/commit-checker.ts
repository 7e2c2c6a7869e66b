import { readFileSync } from 'node:fs';
import {
  compilePolicy,
  createRekorClient,
  createSigstoreTrust,
  evaluatePolicies,
  parseAllowedSigners,
  parsePolicyFile,
  policiesFor,
  type CompiledPolicy,
  type VerifyEnvironment,
} from '@gitops-gate/commit-verify';
import { ConfigError, type Config } from '@gitops-gate/config';
import { normalizeRepoUrl } from '@gitops-gate/contracts';
import type { CommitVerifierFn } from './processor.js';

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
  throw new ConfigError('POLICY_FILE or ALLOWED_SIGNERS_FILE is required: without a signer policy every commit would be rejected');
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
    trust: createSigstoreTrust(trustedRoot),
    rekor: config.REKOR_URL ? createRekorClient({ url: config.REKOR_URL }) : undefined,
  };
}

export function createCommitChecker(policies: CompiledPolicy[], env: VerifyEnvironment): CommitVerifierFn {
  return (raw, job) => evaluatePolicies(raw, policiesFor(policies, job.repoUrl, job.branch, normalizeRepoUrl), { expectedSha: job.sha, env });
}
