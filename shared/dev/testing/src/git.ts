import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SshSigningKey {
  privateKeyPath: string;
  publicKey: string;
  /** An allowed_signers line for `email`. */
  allowedSignersLine(email: string): string;
}

export function generateSshKey(dir: string, name = 'id_ed25519', type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519'): SshSigningKey {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', path]);
  chmodSync(path, 0o600);
  const publicKey = readFileSync(`${path}.pub`, 'utf8').trim();
  return {
    privateKeyPath: path,
    publicKey,
    allowedSignersLine: (email) => `${email} namespaces="git" ${publicKey.split(' ').slice(0, 2).join(' ')}`,
  };
}

export interface TestRepo {
  /** Working clone where commits are made. */
  workDir: string;
  /** Bare "remote" that the services fetch from (file://). */
  bareDir: string;
  url: string;
  git(...args: string[]): string;
  /** Commits a change; signs with the key when given. Returns the full sha. */
  commit(message: string, opts?: { signWith?: SshSigningKey; email?: string }): string;
  /** Pushes the branch to the bare remote (optionally forced). */
  push(branch?: string, force?: boolean): void;
  head(): string;
}

const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_COMMITTER_NAME: 'Test Committer',
};

/** A real git repository with a bare remote, for end-to-end tests. */
export function createTestRepo(root?: string, defaultEmail = 'dev@example.com'): TestRepo {
  const base = root ?? mkdtempSync(join(tmpdir(), 'gg-repo-'));
  const bareDir = join(base, 'remote.git');
  const workDir = join(base, 'work');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', bareDir], { env: GIT_ENV });
  execFileSync('git', ['init', '--quiet', '--initial-branch=main', workDir], { env: GIT_ENV });
  const git = (...args: string[]): string =>
    execFileSync('git', args, {
      cwd: workDir,
      env: { ...GIT_ENV, GIT_AUTHOR_EMAIL: defaultEmail, GIT_COMMITTER_EMAIL: defaultEmail },
      encoding: 'utf8',
    }).trim();
  git('remote', 'add', 'origin', bareDir);
  let counter = 0;
  return {
    workDir,
    bareDir,
    url: `file://${bareDir}`,
    git,
    commit(message, opts = {}) {
      counter += 1;
      writeFileSync(join(workDir, 'deploy.txt'), `${message}\n${counter}\n`);
      git('add', 'deploy.txt');
      const email = opts.email ?? defaultEmail;
      const sign = opts.signWith
        ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${opts.signWith.privateKeyPath}`, 'commit', '-S']
        : ['commit', '--no-gpg-sign'];
      execFileSync('git', [...sign, '--quiet', '-m', message], {
        cwd: workDir,
        env: { ...GIT_ENV, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_EMAIL: email },
      });
      return git('rev-parse', 'HEAD');
    },
    push(branch = 'main', force = false) {
      git('push', '--quiet', ...(force ? ['--force'] : []), 'origin', `HEAD:refs/heads/${branch}`);
    },
    head: () => git('rev-parse', 'HEAD'),
  };
}
