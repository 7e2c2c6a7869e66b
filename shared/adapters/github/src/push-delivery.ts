/**
 * A `push` delivery as GitHub sends it (the fields GitHub documents for the event; values gitops-gate cannot know,
 * like avatar URLs, are left out), signed with a webhook secret. Used by `gitops-gate webhook push` and tests.
 */
import { createHmac, randomUUID } from 'node:crypto';

export interface PushCommit {
  id: string;
  treeId: string;
  message: string;
  timestamp: string;
  author: { name: string; email: string };
  committer: { name: string; email: string };
}

export interface PushDeliveryInput {
  cloneUrl: string;
  /** `owner/name` */
  fullName: string;
  branch: string;
  before?: string;
  head: PushCommit;
  repositoryId: number;
  installationId?: number;
  forced?: boolean;
  defaultBranch?: string;
  sender?: string;
}

const ZERO = '0'.repeat(40);

export function pushDeliveryPayload(i: PushDeliveryInput): Record<string, unknown> {
  const [owner = '', name = ''] = i.fullName.split('/');
  const web = i.cloneUrl.replace(/\.git$/, '');
  const before = i.before ?? ZERO;
  const commit = {
    id: i.head.id,
    tree_id: i.head.treeId,
    distinct: true,
    message: i.head.message,
    timestamp: i.head.timestamp,
    url: `${web}/commit/${i.head.id}`,
    author: { name: i.head.author.name, email: i.head.author.email },
    committer: { name: i.head.committer.name, email: i.head.committer.email },
    added: [],
    removed: [],
    modified: [],
  };
  return {
    ref: `refs/heads/${i.branch}`,
    before,
    after: i.head.id,
    created: before === ZERO,
    deleted: false,
    forced: i.forced ?? false,
    base_ref: null,
    compare: `${web}/compare/${before.slice(0, 12)}...${i.head.id.slice(0, 12)}`,
    commits: [commit],
    head_commit: commit,
    repository: {
      id: i.repositoryId,
      node_id: `R_${i.repositoryId}`,
      name,
      full_name: i.fullName,
      private: true,
      owner: { login: owner, name: owner },
      html_url: web,
      url: web,
      clone_url: i.cloneUrl,
      default_branch: i.defaultBranch ?? 'main',
      master_branch: i.defaultBranch ?? 'main',
    },
    pusher: { name: i.head.committer.name, email: i.head.committer.email },
    sender: { login: i.sender ?? i.head.committer.name },
    ...(i.installationId !== undefined ? { installation: { id: i.installationId, node_id: `I_${i.installationId}` } } : {}),
  };
}

/** Headers of a delivery: event, a fresh delivery id, and `X-Hub-Signature-256` over the exact body bytes. */
export function signedDeliveryHeaders(
  secret: string,
  event: string,
  body: string,
  delivery: string = randomUUID(),
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/gitops-gate',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-github-hook-installation-target-type': 'integration',
    'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
  };
}
