// The endpoints an installation token reaches: its repository list, a repository, check runs (create, update, list
// by commit) and commit statuses. An installation sees only its own repositories; others are 404 for it.
import type { IncomingMessage } from 'node:http';
import { readBody, type Reply } from './reply.js';
import { repoJson, type EmulatorState } from './state.js';
import type { CheckRun, CommitStatus, EmulatedInstallation } from './types.js';

export async function handleInstallationRequest(
  s: EmulatorState,
  req: IncomingMessage,
  u: URL,
  path: string,
  inst: EmulatedInstallation,
  reply: Reply,
): Promise<number> {
  const method = req.method ?? 'GET';
  if (path === '/installation/repositories' && method === 'GET') {
    return reply(200, { total_count: inst.repositories.length, repositories: inst.repositories.map((r) => repoJson(r, s.url)) });
  }
  const m = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
  if (!m) return reply(404, { message: 'Not Found' });
  const repo = inst.repositories.find((x) => x.owner.toLowerCase() === m[1]!.toLowerCase() && x.name.toLowerCase() === m[2]!.toLowerCase());
  // An installation token sees only its installation's repositories: others do not exist for it.
  if (!repo) return reply(404, { message: 'Not Found' });
  const full = `${repo.owner}/${repo.name}`;
  const rest = m[3] ?? '';
  if (rest === '' && method === 'GET') return reply(200, repoJson(repo, s.url));
  if (rest === '/check-runs' && method === 'POST') return createCheckRun(s, full, await readBody(req), reply);
  const upd = /^\/check-runs\/(\d+)$/.exec(rest);
  if (upd && method === 'PATCH') {
    const run = s.checkRuns.find((r) => r.id === Number(upd[1]) && r.repo === full);
    if (!run) return reply(404, { message: 'Not Found' });
    return updateCheckRun(run, await readBody(req), reply);
  }
  const list = /^\/commits\/([^/]+)\/check-runs$/.exec(rest);
  if (list && method === 'GET') {
    const name = u.searchParams.get('check_name');
    const runs = s.checkRuns.filter((r) => r.repo === full && r.head_sha === list[1] && (!name || r.name === name));
    return reply(200, { total_count: runs.length, check_runs: runs });
  }
  const st = /^\/statuses\/([0-9a-f]{40})$/.exec(rest);
  if (st && method === 'POST') return createStatus(s, full, st[1]!, await readBody(req), reply);
  return reply(404, { message: 'Not Found' });
}

function createCheckRun(s: EmulatorState, full: string, b: Record<string, unknown>, reply: Reply): number {
  if (typeof b.name !== 'string' || typeof b.head_sha !== 'string')
    return reply(422, { message: 'Invalid request: name and head_sha are required' });
  const run: CheckRun = {
    id: s.nextId++,
    repo: full,
    head_sha: b.head_sha,
    name: b.name,
    status: typeof b.status === 'string' ? b.status : 'queued',
    conclusion: typeof b.conclusion === 'string' ? b.conclusion : null,
    details_url: typeof b.details_url === 'string' ? b.details_url : undefined,
    external_id: typeof b.external_id === 'string' ? b.external_id : undefined,
    output: b.output as CheckRun['output'],
    history: [],
  };
  if (run.conclusion) run.status = 'completed';
  run.history.push({ status: run.status, conclusion: run.conclusion, summary: run.output?.summary });
  s.checkRuns.push(run);
  return reply(201, run);
}

function updateCheckRun(run: CheckRun, b: Record<string, unknown>, reply: Reply): number {
  if (typeof b.status === 'string') run.status = b.status;
  if (typeof b.conclusion === 'string') {
    run.conclusion = b.conclusion;
    run.status = 'completed';
  } else if (b.status && b.status !== 'completed') run.conclusion = null;
  if (typeof b.details_url === 'string') run.details_url = b.details_url;
  if (b.output) run.output = b.output;
  run.history.push({ status: run.status, conclusion: run.conclusion, summary: run.output?.summary });
  return reply(200, run);
}

function createStatus(s: EmulatorState, full: string, sha: string, b: Record<string, unknown>, reply: Reply): number {
  if (!['error', 'failure', 'pending', 'success'].includes(String(b.state))) return reply(422, { message: 'Validation Failed: state' });
  const st: CommitStatus = {
    id: s.nextId++,
    repo: full,
    sha,
    state: String(b.state),
    context: typeof b.context === 'string' ? b.context : 'default',
    description: typeof b.description === 'string' ? b.description : undefined,
    target_url: typeof b.target_url === 'string' ? b.target_url : undefined,
  };
  s.statuses.push(st);
  return reply(201, st);
}
