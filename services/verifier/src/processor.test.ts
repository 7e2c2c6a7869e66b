import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Queue, UnrecoverableError, type Job } from 'bullmq';
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

function job(sha: string, cloneUrl = GH): Job {
  const data: VerifyCommitJob = {
    v: 1, kind: 'commit', deliveryId: randomUUID(), repoUrl: 'https://github.com/org/app', cloneUrl, repoFullName: 'org/app',
    branch: 'main', sha, forced: false, receivedAt: new Date().toISOString(),
  };
  return { id: 'x', data } as unknown as Job;
}

function processor(urlRewrites: Record<string, string> = { [GH]: repo.url }) {
  return createVerifyProcessor({
    mirror: createGitMirror({ cacheDir: join(dir, `cache-${randomUUID()}`), urlRewrites }),
    verifyCommit: (raw, j) => evaluatePolicies(raw, [compiled], { expectedSha: j.sha }),
    gateQueue,
    logger: silent,
    registry: new Registry(),
  });
}

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

  it('a commit that does not exist in the repository → rejected verdict (permanent)', async () => {
    const out = (await processor()(job('e'.repeat(40)))) as { outcome: string; code: string };
    expect(out).toMatchObject({ outcome: 'rejected', code: 'GIT_COMMIT_NOT_FOUND' });
  });

  it('an unreachable repository throws, so BullMQ retries with backoff', async () => {
    await expect(processor({})(job('f'.repeat(40), 'file:///nonexistent/repo.git'))).rejects.toMatchObject({ transient: true });
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
