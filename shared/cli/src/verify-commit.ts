/**
 * `gitops-gate verify-commit`: the verifier's library on one commit, with flags shaped like `cosign verify` /
 * `gitsign verify`. Exit 0 only when verified; otherwise one line on stderr naming why.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { createGpgKeyring, createRekorClient, parseRevocationList } from '@gitops-gate/commit-verify';
import { compilePolicy, evaluatePolicies, parsePolicyFile, type CompiledPolicy } from '@gitops-gate/policy';
import { UsageError, type Io } from './io.js';

export const VERIFY_COMMIT_USAGE = `usage: gitops-gate verify-commit <commit-file | sha --repo DIR>
    [--certificate-identity ID | --certificate-identity-regexp RE] [--certificate-oidc-issuer ISS]
    [--allowed-signers FILE] [--revoked-keys FILE] [--gpg-key FILE]... [--trusted-root FILE]
    [--rekor-url URL | --offline] [--policy FILE] [--json]`;

function readFlagFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function loadCommit(target: string, repo: string | undefined): { raw: Buffer; sha?: string } {
  if (repo) {
    try {
      const sha = execFileSync('git', ['-C', repo, 'rev-parse', '--verify', '--end-of-options', `${target}^{commit}`], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
      return { raw: execFileSync('git', ['-C', repo, 'cat-file', 'commit', sha], { stdio: ['ignore', 'pipe', 'pipe'] }), sha };
    } catch {
      throw new UsageError(`${target} is not a commit in ${repo}`);
    }
  }
  if (!existsSync(target)) throw new UsageError(`${target}: no such file (to name a commit by sha, add --repo DIR)`);
  const raw = readFileSync(target);
  // A file named after its object id (as `git cat-file commit <sha> > <sha>.commit` makes) must hash to it.
  const named = /(?:^|\/)([0-9a-f]{40}|[0-9a-f]{64})(?:\.commit)?$/.exec(target)?.[1];
  return { raw, sha: named };
}

export async function verifyCommitCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      repo: { type: 'string' },
      'certificate-identity': { type: 'string' },
      'certificate-identity-regexp': { type: 'string' },
      'certificate-oidc-issuer': { type: 'string' },
      'allowed-signers': { type: 'string' },
      'revoked-keys': { type: 'string' },
      'gpg-key': { type: 'string', multiple: true },
      'trusted-root': { type: 'string' },
      'rekor-url': { type: 'string' },
      offline: { type: 'boolean' },
      policy: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1)
    throw new UsageError(`expected exactly one commit (file or sha), got ${positionals.length}\n${VERIFY_COMMIT_USAGE}`);
  if (values['certificate-identity'] && values['certificate-identity-regexp']) {
    throw new UsageError('--certificate-identity and --certificate-identity-regexp are mutually exclusive');
  }
  if ((values['certificate-identity'] || values['certificate-identity-regexp']) && !values['certificate-oidc-issuer']) {
    throw new UsageError('--certificate-oidc-issuer is required with --certificate-identity(-regexp)');
  }
  if (values['rekor-url'] && values.offline) throw new UsageError('--rekor-url and --offline are mutually exclusive');

  let policies: CompiledPolicy[];
  if (values.policy) {
    policies = await parsePolicyFile(readFlagFile(values.policy, '--policy'), values.policy);
  } else {
    const commits: Record<string, unknown> = {};
    if (values['certificate-oidc-issuer']) {
      commits.gitsign = [
        values['certificate-identity-regexp']
          ? { identityRegExp: values['certificate-identity-regexp'], issuer: values['certificate-oidc-issuer'] }
          : { identity: values['certificate-identity'], issuer: values['certificate-oidc-issuer'] },
      ];
    }
    if (values['allowed-signers']) commits.ssh = { allowedSigners: readFlagFile(values['allowed-signers'], '--allowed-signers') };
    if (values['gpg-key']?.length) {
      const armored = values['gpg-key'].map((f) => readFlagFile(f, '--gpg-key'));
      const keyring = await createGpgKeyring(armored);
      commits.gpg = [...keyring.byFingerprint.values()].map((e) => ({ fingerprint: e.fingerprint, publicKey: e.key.armor() }));
    }
    if (Object.keys(commits).length === 0) {
      throw new UsageError(
        'no signers given: use --certificate-identity/--certificate-oidc-issuer, --allowed-signers, --gpg-key or --policy',
      );
    }
    policies = [
      await compilePolicy(
        {
          apiVersion: 'gitops-gate.io/v1alpha1',
          kind: 'GatePolicy',
          metadata: { name: 'command-line' },
          spec: { repository: '*', branches: ['*'], commits },
        },
        'flags',
      ),
    ];
  }

  if (values['revoked-keys']) {
    // Like git's gpg.ssh.revocationFile: an OpenSSH KRL or a list of public keys. It only takes trust away, so it is
    // added to every policy that trusts SSH keys (a policy file's own revokedKeys stay in force too).
    const path = values['revoked-keys'];
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new UsageError(`--revoked-keys: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let list;
    try {
      list = parseRevocationList(bytes, path);
    } catch (err) {
      throw new UsageError(`--revoked-keys: ${(err as Error).message}`);
    }
    const withSsh = policies.filter((p) => p.commit.ssh);
    if (withSsh.length === 0) throw new UsageError('--revoked-keys needs SSH signers (--allowed-signers, or a policy with commits.ssh)');
    for (const p of withSsh) p.commit.ssh!.revoked = [...(p.commit.ssh!.revoked ?? []), list];
  }

  const trustedRoot = values['trusted-root'] ? (JSON.parse(readFlagFile(values['trusted-root'], '--trusted-root')) as object) : undefined;
  const env = {
    trust: createBundleTrust(trustedRoot),
    // Offline by default: this tool never reaches out unless told where.
    rekor: values['rekor-url'] ? createRekorClient({ url: values['rekor-url'] }) : undefined,
  };
  const { raw, sha } = loadCommit(positionals[0]!, values.repo);
  const { verdict, results } = await evaluatePolicies(raw, policies, { expectedSha: sha, env });
  if (values.json)
    io.stdout.write(`${JSON.stringify({ ...verdict, policies: results.map((r) => ({ mode: r.mode, ...r.verdict })) }, null, 2)}\n`);
  if (verdict.ok) {
    if (!values.json)
      io.stdout.write(
        `verified: ${verdict.sha} signed by ${verdict.signer.identity}${verdict.signer.issuer ? ` (${verdict.signer.issuer})` : ''} via ${verdict.method} [policy ${verdict.policy}]\n`,
      );
    return 0;
  }
  io.stderr.write(`not verified: ${verdict.code}: ${verdict.reason}\n`);
  return 1;
}
