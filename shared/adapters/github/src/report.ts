/**
 * Gate decisions reported on the commit: a check run per (commit, Application) with an App, a commit status with a
 * personal token. The gate only enqueues (BullMQ queue `report`, job id = decision id, so a retried gate job or a
 * second replica adds nothing); a worker talks to GitHub. A pin never waits for GitHub.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { GitHubError, repoCoordinates, type GitHubClient } from './client.js';

export const QUEUE_REPORT = 'report';

export const reportJob = z.object({
  v: z.literal(1),
  decisionId: z.string().min(1),
  time: z.string().min(1),
  repoUrl: z.string().min(1),
  sha: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/),
  /** `<namespace>/<name>` */
  app: z.string().min(1),
  action: z.string().min(1),
  reason: z.string(),
  code: z.string().optional(),
  method: z.string().optional(),
  signer: z.string().optional(),
  issuer: z.string().optional(),
  previousRevision: z.string().optional(),
});
export type ReportJob = z.infer<typeof reportJob>;

export interface CheckRunUpdate {
  name: string;
  status: 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'neutral';
  title: string;
  summary: string;
  detailsUrl?: string;
}

/** The check run's name: one per Application, so a commit deployed by several shows each. */
export const checkRunName = (app: string): string => `gitops-gate / ${app}`;

/** Link to the Application's decisions on /ui (`GATE_UI_URL`), or undefined. */
export function detailsUrl(uiUrl: string | undefined, app: string, decisionId: string): string | undefined {
  if (!uiUrl) return undefined;
  const u = new URL(uiUrl);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  const [ns = '', name = ''] = app.split('/');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}/app/${encodeURIComponent(ns)}/${encodeURIComponent(name)}#${encodeURIComponent(decisionId)}`;
}

/**
 * Signers, issuers and reasons come from commit authors and certificates: on the commit page GitHub renders the
 * summary as Markdown, so an author could otherwise plant links, images (tracking pixels) or HTML next to the gate's
 * verdict. Every Markdown/HTML metacharacter is escaped and line breaks folded, so the text shows as typed.
 */
export function md(text: string): string {
  return text.replace(/[\r\n\u2028\u2029]+/g, ' ').replace(/[\\`*_{}[\]()#+\-.!|<>~&@:]/g, (c) => `\\${c}`);
}

/**
 * A code span that shows the value as it is and cannot be closed early: the fence is one backtick longer than the
 * longest backtick run inside (CommonMark 6.1), padded when the value starts or ends with one. Nothing is dropped —
 * a signer with a backtick must not look like the one without. Line breaks, and characters that reorder or hide text
 * (bidi controls, zero-width, other controls), are shown as <U+XXXX> so look-alikes stay distinguishable.
 */
function code(text: string): string {
  const shown = text.replace(INVISIBLE, (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`);
  const longest = Math.max(0, ...(shown.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  const pad = shown.startsWith('`') || shown.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${shown}${pad}${fence}`;
}

// eslint-disable-next-line no-control-regex -- controls are exactly what is made visible here
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/gu;

/**
 * What a decision looks like on the commit. Undefined = not reported (errors writing the Application are the
 * gate's to retry, not a verdict on the commit).
 */
export function checkRunFor(job: ReportJob, uiUrl?: string): CheckRunUpdate | undefined {
  const a = job.action;
  const evidence = [
    `**${md(a)}** for ${code(job.app)}: ${md(job.reason)}`,
    '',
    ...(job.code ? [`- reason code: ${code(job.code)}`] : []),
    ...(job.method ? [`- method: ${code(job.method)}`] : []),
    ...(job.signer ? [`- signer: ${code(job.signer)}`] : []),
    ...(job.issuer ? [`- issuer: ${code(job.issuer)}`] : []),
    ...(job.previousRevision ? [`- previous revision: ${code(job.previousRevision)}`] : []),
    `- decision: ${code(job.decisionId)} at ${code(job.time)}`,
  ].join('\n');
  const base = { name: checkRunName(job.app), summary: evidence.slice(0, 60_000), detailsUrl: detailsUrl(uiUrl, job.app, job.decisionId) };
  if (a === 'pin' || a === 'audit-pin')
    return {
      ...base,
      status: 'completed',
      conclusion: 'success',
      title: a === 'pin' ? 'Deployed: pinned' : 'Deployed: pinned (audit mode)',
    };
  if (a === 'skip-older' || a === 'skip-same')
    return {
      ...base,
      status: 'completed',
      conclusion: 'neutral',
      title: a === 'skip-older' ? 'Not deployed: a newer commit is pinned' : 'Already pinned',
    };
  if (a.startsWith('refuse-')) return { ...base, status: 'completed', conclusion: 'failure', title: `Refused: ${job.code ?? a}` };
  if (a === 'wait-images' || a.startsWith('deferred-'))
    return { ...base, status: 'in_progress', title: a === 'wait-images' ? 'Waiting for verified images' : 'Verifying again' };
  return undefined;
}

/** The same as a commit status (personal token): statuses have no neutral, so a skip is a success that says so. */
export function commitStatusFor(update: CheckRunUpdate): {
  state: 'success' | 'failure' | 'pending';
  context: string;
  description: string;
  target_url?: string;
} {
  const state = update.status === 'in_progress' ? 'pending' : update.conclusion === 'failure' ? 'failure' : 'success';
  return {
    state,
    context: update.name,
    description: update.title.slice(0, 140),
    ...(update.detailsUrl ? { target_url: update.detailsUrl } : {}),
  };
}

export interface ReportEnqueuer {
  enqueue(job: ReportJob): Promise<void>;
  close(): Promise<void>;
}

export function createReportQueue(connection: Redis, prefix: string): ReportEnqueuer {
  const queue = new Queue(QUEUE_REPORT, { connection, prefix });
  return {
    async enqueue(job) {
      await queue.add('report', job, {
        // The decision id: a gate job retried after recording, or redelivered, reports once.
        jobId: `report-${job.decisionId}`,
        attempts: 12,
        backoff: { type: 'exponential', delay: 2_000 },
        removeOnComplete: { age: 86_400, count: 10_000 },
        removeOnFail: { age: 7 * 86_400 },
      });
    },
    close: () => queue.close(),
  };
}

export interface ReporterDeps {
  client: GitHubClient;
  redis: Redis;
  prefix: string;
  uiUrl?: string;
  /** How long a replica holds one check run while it reads, creates or updates it. */
  lockMs?: number;
}

// Compare-and-delete: a lock is released only by its holder.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Reports one decision. Per check run (repository, commit, Application) under a Redis lock, so replicas neither
 * create it twice nor apply updates out of order: the check run id is stored once (SET NX); an update older than the
 * one applied last is dropped. Throws on GitHub trouble so the queue retries with backoff.
 */
export function createReportProcessor(deps: ReporterDeps): (job: ReportJob, attempt?: string) => Promise<'reported' | 'stale' | 'skipped'> {
  const lockMs = deps.lockMs ?? 60_000;
  return async (job, attempt = `${process.pid}-${Math.random()}`) => {
    const update = checkRunFor(job, deps.uiUrl);
    if (!update) return 'skipped';
    const { owner, repo } = repoCoordinates(job.repoUrl);
    const base = `${deps.prefix}:github:check:${owner}/${repo}:${job.sha}:${job.app}`.toLowerCase();
    const lock = `${base}:lock`;
    if ((await deps.redis.set(lock, attempt, 'PX', lockMs, 'NX')) !== 'OK')
      throw new GitHubError('GITHUB_REPORT_BUSY', `check run ${base} busy (another replica reports it)`);
    try {
      const last = await deps.redis.get(`${base}:at`);
      if (last !== null && last > job.time) return 'stale';
      if (deps.client.mode === 'token') {
        await deps.client
          .octokit()
          .request('POST /repos/{owner}/{repo}/statuses/{sha}', { owner, repo, sha: job.sha, ...commitStatusFor(update) });
      } else {
        const installationId = await deps.client.installationFor(owner, repo);
        if (installationId === undefined) return 'skipped';
        const octokit = deps.client.octokit(installationId);
        const body = {
          status: update.status,
          ...(update.conclusion ? { conclusion: update.conclusion } : {}),
          ...(update.detailsUrl ? { details_url: update.detailsUrl } : {}),
          external_id: job.decisionId,
          output: { title: update.title, summary: update.summary },
        };
        let id = await deps.redis.get(`${base}:id`);
        if (id === null) {
          // A replica that died after creating it but before storing the id left it on GitHub: reuse, not duplicate.
          const listed = await octokit.request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', {
            owner,
            repo,
            ref: job.sha,
            check_name: update.name,
            filter: 'all',
          });
          const existing = (listed.data as { check_runs: { id: number }[] }).check_runs[0];
          if (existing) id = String(existing.id);
          else {
            const created = await octokit.request('POST /repos/{owner}/{repo}/check-runs', {
              owner,
              repo,
              name: update.name,
              head_sha: job.sha,
              ...body,
            });
            id = String((created.data as { id: number }).id);
            await deps.redis.set(`${base}:id`, id, 'EX', 30 * 86_400, 'NX');
            await deps.redis.set(`${base}:at`, job.time, 'EX', 30 * 86_400);
            return 'reported';
          }
          await deps.redis.set(`${base}:id`, id, 'EX', 30 * 86_400, 'NX');
        }
        await octokit.request('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', { owner, repo, check_run_id: Number(id), ...body });
      }
      await deps.redis.set(`${base}:at`, job.time, 'EX', 30 * 86_400);
      return 'reported';
    } finally {
      await deps.redis.eval(RELEASE, 1, lock, attempt).catch(() => undefined);
    }
  };
}

export function createReportWorker(
  deps: ReporterDeps & { connection: ConnectionOptions; onError?: (err: Error, job?: Job) => void },
): Worker {
  const report = createReportProcessor(deps);
  // One at a time per replica: reports for a commit reach GitHub in the order the gate decided them.
  const worker = new Worker(QUEUE_REPORT, (job: Job) => report(reportJob.parse(job.data), `${job.id}-${job.attemptsMade}`), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: 1,
  });
  worker.on('failed', (job, err) => deps.onError?.(err, job));
  worker.on('error', (err) => deps.onError?.(err));
  return worker;
}

/** A gate decision record → report job (undefined for records without an Application or a commit). */
export function reportJobFromRecord(r: {
  id: string;
  time: string;
  repo: string;
  sha: string;
  app: string;
  action: string;
  reason: string;
  previousRevision?: string;
  verdict?: { code?: string; method?: string; signer?: string; issuer?: string };
}): ReportJob | undefined {
  const parsed = reportJob.safeParse({
    v: 1,
    decisionId: r.id,
    time: r.time,
    repoUrl: r.repo,
    sha: r.sha,
    app: r.app,
    action: r.action,
    reason: r.reason,
    code: r.verdict?.code || undefined,
    method: r.verdict?.method || undefined,
    signer: r.verdict?.signer || undefined,
    issuer: r.verdict?.issuer || undefined,
    previousRevision: r.previousRevision || undefined,
  });
  return parsed.success ? parsed.data : undefined;
}
