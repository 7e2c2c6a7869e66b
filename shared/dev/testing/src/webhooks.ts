import { createHmac, randomUUID } from 'node:crypto';

export function signBody(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface PushPayloadOptions {
  repoUrl: string;
  fullName?: string;
  ref?: string;
  before?: string;
  after: string;
  deleted?: boolean;
  forced?: boolean;
}

/** A GitHub `push` payload with the fields GitHub always sends (trimmed of the ones nobody reads). */
export function pushPayload(o: PushPayloadOptions): Record<string, unknown> {
  const fullName = o.fullName ?? 'org/app';
  return {
    ref: o.ref ?? 'refs/heads/main',
    before: o.before ?? '0'.repeat(40),
    after: o.after,
    created: (o.before ?? '0'.repeat(40)) === '0'.repeat(40),
    deleted: o.deleted ?? false,
    forced: o.forced ?? false,
    base_ref: null,
    compare: `https://github.com/${fullName}/compare`,
    commits: [],
    head_commit: o.deleted
      ? null
      : {
          id: o.after,
          tree_id: 'f'.repeat(40),
          distinct: true,
          message: 'm',
          timestamp: new Date().toISOString(),
          url: '',
          author: { name: 'a', email: 'a@x' },
          committer: { name: 'a', email: 'a@x' },
          added: [],
          removed: [],
          modified: [],
        },
    repository: {
      id: 1,
      node_id: 'R_1',
      name: fullName.split('/')[1],
      full_name: fullName,
      private: false,
      owner: { login: fullName.split('/')[0], id: 1 },
      html_url: `https://github.com/${fullName}`,
      clone_url: o.repoUrl,
      ssh_url: `git@github.com:${fullName}.git`,
      default_branch: 'main',
    },
    pusher: { name: 'dev', email: 'dev@example.com' },
    sender: { login: 'dev', id: 1 },
  };
}

export function deliveryHeaders(secret: string, event: string, body: string, delivery: string = randomUUID()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': signBody(secret, body),
    'user-agent': 'GitHub-Hookshot/test',
  };
}
