/**
 * `gitops-gate webhook push`: sends the push delivery GitHub would send for a branch's head, signed with the webhook
 * secret, so a receiver can be tried (or a missed delivery re-sent) without writing HMAC code.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pushDeliveryPayload, signedDeliveryHeaders, type PushCommit } from '@gitops-gate/github';
import { UsageError, type Io } from './io.js';

export const WEBHOOK_USAGE =
  'usage: gitops-gate webhook push --repo DIR [--branch main] --url URL --secret S [--clone-url URL] [--full-name OWNER/NAME] [--repository-id N] [--installation-id N] [--before SHA]\n' +
  '  (the secret may also come from WEBHOOK_SECRET; --clone-url defaults to the remote origin, else file://DIR)';

function git(repo: string, args: string[]): string {
  try {
    return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    throw new UsageError(
      `git ${args[0]} in ${repo} failed: ${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`,
    );
  }
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(v)) throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function headCommit(repo: string, branch: string): PushCommit & { parent?: string } {
  const sep = '\u001f';
  const out = git(repo, [
    'log',
    '-1',
    `--format=%H${sep}%T${sep}%P${sep}%cI${sep}%an${sep}%ae${sep}%cn${sep}%ce${sep}%B`,
    '--end-of-options',
    `refs/heads/${branch}`,
  ]);
  const [id = '', treeId = '', parents = '', timestamp = '', an = '', ae = '', cn = '', ce = '', ...msg] = out.split(sep);
  return {
    id,
    treeId,
    timestamp,
    message: msg.join(sep),
    author: { name: an, email: ae },
    committer: { name: cn, email: ce },
    parent: parents.split(' ')[0] || undefined,
  };
}

export async function webhookCommand(args: string[], io: Io, fetchImpl: typeof fetch = fetch): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'push') throw new UsageError(`unknown webhook command ${sub ?? '(none)'}\n${WEBHOOK_USAGE}`);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      repo: { type: 'string' },
      branch: { type: 'string', default: 'main' },
      url: { type: 'string' },
      secret: { type: 'string' },
      'clone-url': { type: 'string' },
      'full-name': { type: 'string' },
      'repository-id': { type: 'string' },
      'installation-id': { type: 'string' },
      before: { type: 'string' },
    },
  });
  const repo = values.repo;
  if (!repo) throw new UsageError(`--repo is required\n${WEBHOOK_USAGE}`);
  if (!values.url) throw new UsageError(`--url is required\n${WEBHOOK_USAGE}`);
  const secret = values.secret ?? io.env.WEBHOOK_SECRET;
  if (!secret) throw new UsageError(`--secret (or WEBHOOK_SECRET) is required\n${WEBHOOK_USAGE}`);
  let target: URL;
  try {
    target = new URL(values.url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  const branch = values.branch;
  const head = headCommit(repo, branch);
  let cloneUrl = values['clone-url'];
  if (!cloneUrl) {
    try {
      cloneUrl = execFileSync('git', ['-C', repo, 'config', '--get', 'remote.origin.url'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      cloneUrl = `file://${git(repo, ['rev-parse', '--absolute-git-dir']).replace(/\/\.git$/, '')}`;
    }
  }
  const fullName =
    values['full-name'] ??
    cloneUrl
      .replace(/\.git$/, '')
      .split(/[/:]/)
      .filter(Boolean)
      .slice(-2)
      .join('/');
  const payload = pushDeliveryPayload({
    cloneUrl,
    fullName,
    branch,
    before: values.before ?? head.parent,
    head,
    repositoryId: positiveInt('--repository-id', values['repository-id']) ?? 1,
    installationId: positiveInt('--installation-id', values['installation-id']),
  });
  const body = JSON.stringify(payload);
  const headers = signedDeliveryHeaders(secret, 'push', body);
  const res = await fetchImpl(target, { method: 'POST', headers, body });
  const text = await res.text();
  io.stdout.write(`push ${branch} ${head.id} → ${res.status} ${text}\n`);
  return res.status >= 200 && res.status < 300 ? 0 : 1;
}
