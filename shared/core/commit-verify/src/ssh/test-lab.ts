/**
 * Test support (not exported from the package): real git, ssh-keygen and ssh-agent in an isolated temp HOME, so
 * every generated case can be checked against `git verify-commit` / `ssh-keygen -Y verify`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const COMMIT_TIME = 1_700_000_000; // 2023-11-14T22:13:20Z
export const EMAIL = 'alice@example.com';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface SshKey {
  path: string;
  /** "<type> <base64>" */
  line: string;
  fingerprint: string;
}

/** Real git and ssh-keygen in an isolated temp HOME, UTC, no user/system config. */
export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'sshsig-lab-'));
  private readonly env = {
    ...process.env,
    HOME: this.dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    // git passes the commit time to ssh-keygen in local time and ssh-keygen reads un-suffixed allowed_signers times
    // in local time; pinning UTC makes both agree with our UTC reading.
    TZ: 'UTC',
    LC_ALL: 'C',
  };
  private readonly repo = join(this.dir, 'repo');
  private counter = 0;

  constructor() {
    this.must('git', ['init', '-q', this.repo]);
  }

  run(cmd: string, args: string[], input?: Uint8Array | string, extraEnv: Record<string, string> = {}): Run {
    const r = spawnSync(cmd, args, { cwd: this.repo, env: { ...this.env, ...extraEnv }, input, encoding: 'buffer', maxBuffer: 1 << 26 });
    return { status: r.status, stdout: r.stdout?.toString('latin1') ?? '', stderr: r.stderr?.toString('utf8') ?? '' };
  }

  private must(cmd: string, args: string[], input?: Uint8Array | string, extraEnv?: Record<string, string>): string {
    const r = spawnSync(cmd, args, { cwd: this.dir, env: { ...this.env, ...extraEnv }, input, encoding: 'latin1' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  keygen(name: string, args: string[]): SshKey {
    const path = join(this.dir, name);
    this.must('ssh-keygen', ['-q', ...args, '-N', '', '-C', name, '-f', path]);
    const pub = readFileSync(`${path}.pub`, 'utf8').trim();
    return {
      path,
      line: pub.split(' ').slice(0, 2).join(' '),
      fingerprint: this.must('ssh-keygen', ['-lf', `${path}.pub`]).split(' ')[1]!,
    };
  }

  /** A commit signed by `git commit -S` with gpg.format=ssh; returns the raw object bytes. */
  signedCommit(keyPath: string, email = EMAIL, time = COMMIT_TIME): Buffer {
    this.counter += 1;
    const env = { GIT_COMMITTER_DATE: `@${time} +0000`, GIT_AUTHOR_DATE: `@${time} +0000` };
    const args = ['-c', `user.email=${email}`, '-c', 'user.name=Test', '-c', 'gpg.format=ssh', '-c', `user.signingkey=${keyPath}`];
    const r = this.run('git', [...args, 'commit', '-q', '--allow-empty', '-S', '-m', `signed commit ${this.counter}`], undefined, env);
    if (r.status !== 0) throw new Error(`git commit -S failed: ${r.stderr}`);
    return Buffer.from(this.run('git', ['cat-file', 'commit', 'HEAD']).stdout, 'latin1');
  }

  /** `git verify-commit` of these exact bytes with this allowed_signers content (and gpg.ssh.revocationFile). */
  gitVerify(raw: Uint8Array, allowedSigners: string, revocationFile?: string): { ok: boolean; output: string } {
    const file = join(this.dir, `allowed_signers.${++this.counter}`);
    writeFileSync(file, allowedSigners);
    const h = this.run('git', ['hash-object', '-t', 'commit', '-w', '--stdin'], raw);
    if (h.status !== 0) throw new Error(`hash-object failed: ${h.stderr}`);
    const revocation = revocationFile ? ['-c', `gpg.ssh.revocationFile=${revocationFile}`] : [];
    const r = this.run('git', ['-c', `gpg.ssh.allowedSignersFile=${file}`, ...revocation, 'verify-commit', h.stdout.trim()]);
    return { ok: r.status === 0, output: r.stdout + r.stderr };
  }

  /** `ssh-keygen -Y sign` over `data`; returns the armored signature. */
  sshSign(data: Uint8Array, keyPath: string, namespace: string, opts: string[] = []): string {
    const r = this.run('ssh-keygen', ['-Y', 'sign', '-n', namespace, '-f', keyPath, ...opts.flatMap((o) => ['-O', o])], data);
    if (r.status !== 0) throw new Error(`ssh-keygen -Y sign failed: ${r.stderr}`);
    return r.stdout;
  }

  /** `ssh-keygen -Y verify`, the primitive git uses. */
  sshVerify(
    data: Uint8Array,
    armored: string,
    allowedSigners: string,
    principal: string,
    namespace = 'git',
    time = COMMIT_TIME,
    revocationFile?: string,
  ): boolean {
    const n = ++this.counter;
    writeFileSync(join(this.dir, `as.${n}`), allowedSigners);
    writeFileSync(join(this.dir, `sig.${n}`), armored);
    const t = new Date(time * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
    return (
      this.run(
        'ssh-keygen',
        [
          '-Y',
          'verify',
          '-n',
          namespace,
          '-f',
          join(this.dir, `as.${n}`),
          '-I',
          principal,
          '-s',
          join(this.dir, `sig.${n}`),
          `-Overify-time=${t}`,
          ...(revocationFile ? ['-r', revocationFile] : []),
        ],
        data,
      ).status === 0
    );
  }

  /** The bytes of an unsigned commit by `email` at `time`, to carry signatures made outside git. */
  unsignedCommit(email = EMAIL, time = COMMIT_TIME, message = 'unsigned'): Buffer {
    const env = {
      GIT_COMMITTER_DATE: `@${time} +0000`,
      GIT_AUTHOR_DATE: `@${time} +0000`,
      GIT_AUTHOR_NAME: 'Test',
      GIT_COMMITTER_NAME: 'Test',
      GIT_AUTHOR_EMAIL: email,
      GIT_COMMITTER_EMAIL: email,
    };
    const tree = this.run('git', ['mktree'], '').stdout.trim();
    const c = this.run('git', ['commit-tree', tree, '-m', `${message} ${++this.counter}`], undefined, env);
    if (c.status !== 0) throw new Error(`commit-tree failed: ${c.stderr}`);
    return Buffer.from(this.run('git', ['cat-file', 'commit', c.stdout.trim()]).stdout, 'latin1');
  }

  /** Writes a file in the lab directory; returns its path. */
  file(name: string, content: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  /** `ssh-keygen -s CA` over `pubPath` (extra args: -n, -V, -z, -O, -h ...); returns the certificate's path. */
  certify(caPath: string, pubPath: string, keyId: string, args: string[]): string {
    this.must('ssh-keygen', ['-q', '-s', caPath, '-I', keyId, ...args, pubPath]);
    return pubPath.replace(/\.pub$/, '-cert.pub');
  }

  /** `ssh-keygen -k`: a KRL from a KRL specification (serial:, id:, key:, sha256: lines), optionally under a CA. */
  krl(name: string, spec: string, caPub?: string): string {
    const specPath = this.file(`${name}.spec`, spec);
    const path = join(this.dir, name);
    this.must('ssh-keygen', ['-q', '-k', '-f', path, ...(caPub ? ['-s', caPub] : []), specPath]);
    return path;
  }

  private agent: { sock: string; pid: number } | undefined;

  /** An ssh-agent of our own (killed by cleanup) holding `keyPath` and, when it exists next to it, its certificate. */
  agentAdd(keyPath: string): Record<string, string> {
    if (!this.agent) {
      const out = this.must('ssh-agent', ['-s', '-a', join(this.dir, 'agent.sock')]);
      const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)?.[1]);
      this.agent = { sock: join(this.dir, 'agent.sock'), pid };
    }
    const env = { SSH_AUTH_SOCK: this.agent.sock };
    this.must('ssh-add', ['-q', keyPath], undefined, env);
    return env;
  }

  /** A commit signed by `git commit -S` through the agent with `signingKey` (a certificate's .pub path). */
  signedCommitViaAgent(signingKey: string, agentEnv: Record<string, string>, email = EMAIL, time = COMMIT_TIME): Buffer {
    const env = { ...agentEnv, GIT_COMMITTER_DATE: `@${time} +0000`, GIT_AUTHOR_DATE: `@${time} +0000` };
    const args = ['-c', `user.email=${email}`, '-c', 'user.name=Test', '-c', 'gpg.format=ssh', '-c', `user.signingkey=${signingKey}`];
    const r = this.run('git', [...args, 'commit', '-q', '--allow-empty', '-S', '-m', `agent-signed ${++this.counter}`], undefined, env);
    if (r.status !== 0) throw new Error(`git commit -S via agent failed: ${r.stderr}`);
    return Buffer.from(this.run('git', ['cat-file', 'commit', 'HEAD']).stdout, 'latin1');
  }

  cleanup(): void {
    if (this.agent && Number.isInteger(this.agent.pid)) {
      try {
        process.kill(this.agent.pid);
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
