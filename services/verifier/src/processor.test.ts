import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluatePolicies, parseAllowedSigners, verifyCommit, type CompiledPolicy } from '@gitops-gate/commit-verify';
import type { VerifyCommitJob } from '@gitops-gate/contracts';
import { createGitMirror } from '@gitops-gate/git';
import { createGateQueue, createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, generateSshKey, startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createVerifyProcessor } from './processor.js';

const silent = createLogger('verifier-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const GH = 'https://github.com/org/app.git';

let redis: TestRedis;
let conn: Redis;
let gateQueue: Queue;
const dir = mkdtempSync(join(tmpdir(), 'gg-verifier-'));
const key = generateSshKey(dir, 'k');
const repo = createTestRepo(join(dir, 'repo'));
const policy = { name: 'test-signers', ssh: { allowedSigners: parseAllowedSigners(key.allowedSignersLine('dev@example.com')) } };
const compiled = { name: 'test-signers', mode: 'Enforce', repository: '*', branches: ['*'], selector: {}, commit: policy, images: [] } as unknown as CompiledPolicy;

/** A job as BullMQ hands it to the processor: `attemptsMade` earlier attempts failed, of `attempts` in all. */
function job(sha: string, cloneUrl = GH, attempt: { made: number; of: number } = { made: 0, of: 1 }): Job {
  const data: VerifyCommitJob = {
    v: 1, kind: 'commit', deliveryId: randomUUID(), repoUrl: 'https://github.com/org/app', cloneUrl, repoFullName: 'org/app',
    branch: 'main', sha, forced: false, receivedAt: new Date().toISOString(),
  };
  return { id: 'x', data, attemptsMade: attempt.made, opts: { attempts: attempt.of } } as unknown as Job;
}

/** The same job on a later attempt (BullMQ keeps data and id; attemptsMade grows). */
function again(j: Job, made: number): Job {
  return { ...j, attemptsMade: made } as unknown as Job;
}

function processor(urlRewrites: Record<string, string> = { [GH]: repo.url }, extra: Partial<Parameters<typeof createVerifyProcessor>[0]> = {}) {
  return createVerifyProcessor({
    mirror: createGitMirror({ cacheDir: join(dir, `cache-${randomUUID()}`), urlRewrites }),
    verifyCommit: (raw, j) => evaluatePolicies(raw, [compiled], { expectedSha: j.sha }),
    gateQueue,
    logger: silent,
    registry: new Registry(),
    ...extra,
  });
}

const queuedVerdict = (j: Job) => gateQueue.getJob(`verdict-${(j.data as VerifyCommitJob).deliveryId}-${(j.data as VerifyCommitJob).sha}`);

beforeAll(async () => {
  redis = await startTestRedis();
  conn = createRedisConnection(redis.url, 'worker');
  gateQueue = createGateQueue(conn, `v-${randomUUID().slice(0, 8)}`);
});
afterAll(async () => {
  await gateQueue.close();
  conn.disconnect();
  await redis.close();
});

describe('verify processor', () => {
  it('a signed commit → verified verdict on the gate queue, with signer and method', async () => {
    const base = repo.commit('base');
    const sha = repo.commit('signed', { signWith: key });
    repo.push();
    const j = job(sha);
    const out = (await processor()(j)) as { outcome: string };
    expect(out.outcome).toBe('verified');
    const queued = await gateQueue.getJob(`verdict-${(j.data as VerifyCommitJob).deliveryId}-${sha}`);
    expect(queued?.data).toMatchObject({ kind: 'commit-verdict', sha, outcome: 'verified', method: 'ssh', signer: { identity: 'dev@example.com' }, rule: 'test-signers' });
    // The verdict carries the commit's recent history (itself first) for the gate's ancestry check.
    expect(queued?.data.ancestors[0]).toBe(sha);
    expect(queued?.data.ancestors[1]).toBe(base);
  });

  it('an unsigned commit → rejected verdict, not an error, with no history', async () => {
    const sha = repo.commit('unsigned');
    repo.push();
    const out = (await processor()(job(sha))) as { outcome: string; code: string; ancestors: string[] };
    expect(out).toMatchObject({ outcome: 'rejected', code: 'UNSIGNED', ancestors: [] });
  });

  it('a retried job emits its verdict once', async () => {
    const sha = repo.commit('signed again', { signWith: key });
    repo.push();
    const j = job(sha);
    const p = processor();
    await p(j);
    await p(j);
    const all = await gateQueue.getJobs(['waiting']);
    expect(all.filter((x) => x.data.sha === sha)).toHaveLength(1);
  });

  it('a commit not fetchable yet (pushed, not replicated) is retried, and verified once it arrives', async () => {
    const sha = repo.commit('signed, not pushed yet', { signWith: key });
    const p = processor();
    const j = job(sha, GH, { made: 0, of: 8 });
    // Before: a final GIT_COMMIT_NOT_FOUND rejection (refuse-*, counted by reconcile as covering the commit).
    await expect(p(j)).rejects.toMatchObject({ code: 'GIT_COMMIT_NOT_FOUND' });
    expect(await queuedVerdict(j)).toBeUndefined();
    repo.push();
    expect(await p(again(j, 1))).toMatchObject({ outcome: 'verified', sha });
  });

  it('a commit still missing after the last attempt → one deferred verdict with the real cause, never a rejection', async () => {
    const j = job('e'.repeat(40), GH, { made: 7, of: 8 });
    const out = (await processor()(j)) as { outcome: string; code: string };
    expect(out).toMatchObject({ outcome: 'deferred', code: 'GIT_COMMIT_NOT_FOUND' });
    expect((await queuedVerdict(j))?.data).toMatchObject({ outcome: 'deferred', code: 'GIT_COMMIT_NOT_FOUND', policies: [] });
  });

  it('an unreachable repository throws while attempts remain (BullMQ backoff), and is deferred after the last', async () => {
    const p = processor({});
    const j = job('f'.repeat(40), 'file:///nonexistent/repo.git', { made: 6, of: 8 });
    await expect(p(j)).rejects.toMatchObject({ transient: true });
    expect(await p(again(j, 7))).toMatchObject({ outcome: 'deferred', code: 'GIT_REPOSITORY_UNAVAILABLE' });
  });

  it('a policy result that needs an unavailable Rekor is retried, then deferred; final results are still carried', async () => {
    const sha = repo.commit('signed for rekor', { signWith: key });
    repo.push();
    const unavailable = { ok: false as const, method: 'gitsign' as const, code: 'REKOR_UNAVAILABLE', reason: 'Rekor at http://127.0.0.1:1 is unreachable', policy: 'gitsign-signers', sha };
    const p = processor(undefined, {
      verifyCommit: async (raw, j) => {
        const ssh = await evaluatePolicies(raw, [compiled], { expectedSha: j.sha });
        const rekor = { ...ssh.results[0]!, policy: 'gitsign-signers', verdict: unavailable };
        return { verdict: unavailable, results: [...ssh.results, rekor] };
      },
    });
    const j = job(sha, GH, { made: 0, of: 8 });
    // Before: a final rejection with GITSIGN_NEEDS_ONLINE_LOOKUP, cached nowhere but decided for good by the gate.
    await expect(p(j)).rejects.toMatchObject({ name: 'TransientError', code: 'REKOR_UNAVAILABLE' });
    const out = (await p(again(j, 7))) as { outcome: string; code: string; policies: { name: string; ok: boolean; code: string }[] };
    expect(out).toMatchObject({ outcome: 'deferred', code: 'REKOR_UNAVAILABLE' });
    expect(out.policies.map((r) => [r.name, r.ok, r.code])).toEqual([
      ['test-signers', true, 'VERIFIED'],
      ['gitsign-signers', false, 'REKOR_UNAVAILABLE'],
    ]);
  });

  it('a Rekor entry not listed yet is retried, and a final rejection after the last attempt', async () => {
    const sha = repo.commit('signed, entry not indexed', { signWith: key });
    repo.push();
    const missing = { ok: false as const, method: 'gitsign' as const, code: 'GITSIGN_TLOG_ENTRY_NOT_FOUND', reason: 'Rekor has no entry', policy: 'test-signers', sha };
    const p = processor(undefined, { verifyCommit: async (raw, j) => ({ verdict: missing, results: [{ ...(await evaluatePolicies(raw, [compiled], { expectedSha: j.sha })).results[0]!, verdict: missing }] }) });
    const j = job(sha, GH, { made: 0, of: 8 });
    await expect(p(j)).rejects.toMatchObject({ code: 'GITSIGN_TLOG_ENTRY_NOT_FOUND' });
    expect(await p(again(j, 7))).toMatchObject({ outcome: 'rejected', code: 'GITSIGN_TLOG_ENTRY_NOT_FOUND' });
  });

  it('image: a registry error marked transient is retried, then deferred (no rejection); other errors still throw', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const registryDown = Object.assign(new Error('registry answered HTTP 503'), { code: 'REGISTRY_UNAVAILABLE', transient: true });
    let fail: Error = registryDown;
    const p = processor(undefined, {
      verifyImage: async () => {
        throw fail;
      },
    });
    const data = { v: 1, kind: 'image', deliveryId: randomUUID(), repoUrl: 'https://github.com/org/app', repoFullName: 'org/app', image: 'ghcr.io/org/app', digest, tags: [], receivedAt: new Date().toISOString() };
    const img = (made: number) => ({ id: 'i', data, attemptsMade: made, opts: { attempts: 8 } }) as unknown as Job;
    await expect(p(img(0))).rejects.toBe(registryDown);
    // Before: the last attempt threw too, the job failed and nothing was recorded (a lost verdict).
    const out = await p(img(7));
    expect(out).toMatchObject({ kind: 'image-verdict', ok: false, deferred: true, code: 'REGISTRY_UNAVAILABLE', policies: [] });
    expect((await gateQueue.getJob(`image-${data.deliveryId}-${digest.slice(7, 23)}`))?.data).toMatchObject({ deferred: true, ok: false });
    fail = new Error('a bug');
    await expect(p(img(7))).rejects.toThrow('a bug');
  });

  it('with a real BullMQ worker: attempts-1 retries, then one deferred verdict; the job completes, none fails unrecorded', async () => {
    const prefix = `w-${randomUUID().slice(0, 8)}`;
    const verifyQueue = new Queue('verify', { connection: conn, prefix });
    const tries: number[] = [];
    const p = processor();
    const workerConn = createRedisConnection(redis.url, 'worker');
    const worker = new Worker('verify', async (j: Job) => (tries.push(j.attemptsMade), p(j)), { connection: workerConn, prefix });
    try {
      const data = job('d'.repeat(40)).data as VerifyCommitJob;
      const added = await verifyQueue.add('commit', data, { attempts: 3, backoff: { type: 'fixed', delay: 20 }, jobId: `gh-${data.deliveryId}` });
      const deadline = Date.now() + 20_000;
      while (!(await added.isCompleted()) && !(await added.isFailed())) {
        if (Date.now() > deadline) throw new Error('job neither completed nor failed');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await added.isCompleted()).toBe(true);
      expect(tries).toEqual([0, 1, 2]);
      expect((await gateQueue.getJob(`verdict-${data.deliveryId}-${data.sha}`))?.data).toMatchObject({ outcome: 'deferred', code: 'GIT_COMMIT_NOT_FOUND' });
    } finally {
      await worker.close();
      await verifyQueue.close();
      workerConn.disconnect();
    }
  });

  it('a malformed job fails permanently', async () => {
    await expect(processor()({ id: 'bad', data: { v: 1, kind: 'commit', sha: 'nope' } } as unknown as Job)).rejects.toBeInstanceOf(UnrecoverableError);
  });

  it('bytes that do not hash to the job sha are never verified', async () => {
    const sha = repo.commit('signed 3', { signWith: key });
    repo.push();
    const raw = readFileSync(join(repo.bareDir, 'HEAD'));
    const v = await verifyCommit(raw, policy, { expectedSha: sha });
    expect(v).toMatchObject({ ok: false, code: 'COMMIT_ID_MISMATCH' });
  });
});
