/**
 * GitHub end to end: the whole pipeline (receiver, verifier, gate as processes; real git, real Redis, the sandbox API
 * server) authenticated as a GitHub App against the GitHub API emulator. Deliveries are sent with
 * `gitops-gate webhook push` (the CLI a new user runs); each decision appears on the commit as a check run.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as cli } from '@gitops-gate/cli';
import { startGitHubEmulator, type CheckRun, type GitHubEmulator } from '@gitops-gate/github-emulator';
import {
  createAppReader,
  createDemoFixture,
  DEMO_APP,
  DEMO_REPO_URL,
  gateUrlOf,
  startStack,
  waitForDecision,
  type DemoFixture,
  type Stack,
} from '@gitops-gate/local-stack';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';

let redis: TestRedis;
let stack: Stack;
let fx: DemoFixture;
let gh: GitHubEmulator;
const logs: string[] = [];

async function webhookPush(repositoryId = '500'): Promise<{ code: number; out: string }> {
  let out = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (out += s) }, env: {} };
  const code = await cli(
    [
      'webhook',
      'push',
      '--repo',
      fx.repo.workDir,
      '--url',
      `${stack.receiverUrl}/webhooks/github`,
      '--secret',
      stack.secrets[0]!,
      '--clone-url',
      DEMO_REPO_URL,
      '--repository-id',
      repositoryId,
      '--installation-id',
      '50',
    ],
    io,
  );
  return { code, out };
}

async function waitForRun(sha: string, done: (r: CheckRun) => boolean, timeoutMs = 30_000): Promise<CheckRun> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const run = gh.checkRuns.find((r) => r.head_sha === sha);
    if (run && done(run)) return run;
    await sleep(50);
  }
  throw new Error(`no finished check run for ${sha}: ${JSON.stringify(gh.checkRuns)}\n${logs.slice(-30).join('\n')}`);
}

beforeAll(async () => {
  const workDir = mkdtempSync(join(tmpdir(), 'gg-e2e-gh-'));
  fx = createDemoFixture(workDir);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = join(workDir, 'app-key.pem');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  gh = await startGitHubEmulator({
    appId: 12,
    appPublicKey: publicKey,
    installations: [
      {
        id: 50,
        account: 'demo',
        repositories: [
          { id: 500, owner: 'demo', name: 'app' },
          { id: 501, owner: 'demo', name: 'other' },
        ],
      },
    ],
  });
  redis = await startTestRedis();
  stack = await startStack({
    workDir,
    redisUrl: redis.url,
    seed: [fx.application, fx.policy],
    urlRewrites: fx.urlRewrites,
    queuePrefix: `e2e-${randomUUID().slice(0, 8)}`,
    onLog: (service, line) => logs.push(`${service} ${line}`),
    env: { GITHUB_APP_ID: '12', GITHUB_APP_PRIVATE_KEY_FILE: keyFile, GITHUB_API_URL: gh.url, GITHUB_WRITE_INTERVAL_MS: '20' },
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await redis?.close();
  await gh?.close();
});

describe('decisions on the commit (GitHub App, check runs)', () => {
  it('a signed push → pinned → check run success with the details URL to /ui', async () => {
    const sha = fx.repo.commit('signed change', { signWith: fx.key });
    fx.repo.push();
    const sent = await webhookPush();
    expect(sent.out).toContain('202');
    expect(sent.code).toBe(0);
    const run = await waitForRun(sha, (r) => r.status === 'completed');
    expect(run).toMatchObject({ name: `gitops-gate / ${DEMO_APP.namespace}/${DEMO_APP.name}`, conclusion: 'success', repo: 'demo/app' });
    const d = await waitForDecision(gateUrlOf(stack), sha);
    // npm start's stack sets GATE_UI_URL to the gate's own /ui.
    expect(run.details_url).toBe(`${gateUrlOf(stack)}/ui/app/${DEMO_APP.namespace}/${DEMO_APP.name}#${d.id}`);
    expect(run.output?.summary).toContain('dev@example.com');
    expect((await createAppReader(stack.kubeconfig)(DEMO_APP.namespace, DEMO_APP.name)).revision).toBe(sha);
  });

  it('an unsigned push → refused → check run failure naming UNSIGNED', async () => {
    const sha = fx.repo.commit('unsigned change');
    fx.repo.push();
    expect((await webhookPush()).code).toBe(0);
    const run = await waitForRun(sha, (r) => r.status === 'completed');
    expect(run.conclusion).toBe('failure');
    expect(run.output?.title).toContain('UNSIGNED');
    expect(run.output?.summary).toContain('UNSIGNED');
  });

  it('a redelivery of a decided commit does not create a second check run', async () => {
    const before = gh.checkRuns.length;
    expect((await webhookPush()).code).toBe(0);
    await sleep(1_500);
    const shas = gh.checkRuns.map((r) => r.head_sha);
    expect(new Set(shas).size).toBe(shas.length);
    expect(gh.checkRuns.length).toBe(before);
  });

  it('attacker: a delivery claiming the demo repository with another repository id (of the installation, or not in it) queues nothing (403)', async () => {
    const runs = gh.checkRuns.length;
    const other = await webhookPush('501');
    expect(other.code).toBe(1);
    expect(other.out, other.out).toContain('→ 403');
    expect(other.out, other.out).toContain('REPOSITORY_ID_MISMATCH');
    const outside = await webhookPush('999');
    expect(outside.out, outside.out).toContain('NOT_IN_INSTALLATION');
    await sleep(1_000);
    expect(gh.checkRuns.length).toBe(runs);
  });

  it('50 decisions under a secondary rate limit: all reported, in the order decided, none twice', async () => {
    const first = gh.checkRuns.length;
    gh.secondaryLimit(12, 1);
    const shas: string[] = [];
    for (let i = 0; i < 50; i++) {
      const sha = fx.repo.commit(`change ${i}`, { signWith: fx.key });
      fx.repo.push();
      shas.push(sha);
      expect((await webhookPush()).code).toBe(0);
    }
    const deadline = Date.now() + 120_000;
    const ours = () => gh.checkRuns.slice(first).filter((r) => shas.includes(r.head_sha));
    while (Date.now() < deadline && (ours().length < 50 || ours().some((r) => r.status !== 'completed'))) await sleep(200);
    const runs = ours();
    expect(runs).toHaveLength(50);
    expect(new Set(runs.map((r) => r.head_sha)).size).toBe(50);
    // In the order the gate decided (its audit trail), each decision reported once.
    const res = await fetch(
      `${gateUrlOf(stack)}/api/decisions?app=${encodeURIComponent(`${DEMO_APP.namespace}/${DEMO_APP.name}`)}&limit=500`,
    );
    const { decisions } = (await res.json()) as { decisions: { sha: string; time: string; action: string }[] };
    const decided = decisions.filter((d) => shas.includes(d.sha)).sort((a, b) => a.time.localeCompare(b.time));
    const firstDecision = [...new Map(decided.map((d) => [d.sha, d] as const)).keys()];
    expect(runs.map((r) => r.head_sha)).toEqual(
      decided.filter((d, i) => decided.findIndex((x) => x.sha === d.sha) === i).map((d) => d.sha),
    );
    expect(firstDecision).toHaveLength(50);
    for (const r of runs) expect(r.history.length).toBe(decided.filter((d) => d.sha === r.head_sha).length);
    expect(gh.requests.filter((q) => q.status === 403).length).toBeGreaterThanOrEqual(12);
  }, 200_000);
});
