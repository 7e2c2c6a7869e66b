import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Queue, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowedSigners, verifyCommit } from '@gitops-gate/commit-verify';
import { evaluatePolicies, type CompiledPolicy } from '@gitops-gate/policy';
import { verdictJobId, type CommitVerdictJob, type FollowedRepo, type VerifyCommitJob } from '@gitops-gate/contracts';
import { createGitMirror, type GitMirror } from '@gitops-gate/git';
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
const compiled = {
  name: 'test-signers',
  mode: 'Enforce',
  repository: '*',
  branches: ['*'],
  selector: {},
  commit: policy,
  images: [],
} as unknown as CompiledPolicy;

function job(sha: string, cloneUrl = GH, over: Partial<VerifyCommitJob> = {}): Job {
  const data: VerifyCommitJob = {
    v: 1,
    kind: 'commit',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/org/app',
    cloneUrl,
    repoFullName: 'org/app',
    branch: 'main',
    sha,
    forced: false,
    receivedAt: new Date().toISOString(),
    ...over,
  };
  return { id: 'x', data } as unknown as Job;
}

/** The same job on attempt `made + 1` of `of` (BullMQ's attemptsMade / opts.attempts). */
function later(j: Job, made: number, of: number): Job {
  return { ...j, attemptsMade: made, opts: { attempts: of } } as unknown as Job;
}

const FOLLOWED: FollowedRepo = { repoUrl: 'https://github.com/org/app', fetchUrl: GH, branches: ['main'] };

function processor(
  urlRewrites: Record<string, string> = { [GH]: repo.url },
  followed: (u: string) => Promise<FollowedRepo | null | undefined> = async (u) => (u === FOLLOWED.repoUrl ? FOLLOWED : null),
  mirror?: GitMirror,
) {
  return createVerifyProcessor({
    followed,
    mirror: mirror ?? createGitMirror({ cacheDir: join(dir, `cache-${randomUUID()}`), urlRewrites }),
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
    const queued = await gateQueue.getJob(verdictJobId(j.data as VerifyCommitJob));
    expect(queued?.data).toMatchObject({
      kind: 'commit-verdict',
      sha,
      outcome: 'verified',
      method: 'ssh',
      signer: { identity: 'dev@example.com' },
      rule: 'test-signers',
    });
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

  it('a commit that does not exist in the repository → retried, then one deferred verdict with the real cause (never a rejection)', async () => {
    const j = job('e'.repeat(40));
    await expect(processor()(later(j, 0, 8))).rejects.toMatchObject({ code: 'GIT_COMMIT_NOT_FOUND' });
    const out = (await processor()(later(j, 7, 8))) as { outcome: string; code: string };
    expect(out).toMatchObject({ outcome: 'deferred', code: 'GIT_COMMIT_NOT_FOUND' });
  });

  it('an unreachable repository throws, so BullMQ retries with backoff', async () => {
    const gone = async () => ({ ...FOLLOWED, fetchUrl: 'file:///nonexistent/repo.git' });
    await expect(processor({}, gone)(later(job('f'.repeat(40)), 0, 8))).rejects.toMatchObject({ transient: true });
    expect(await processor({}, gone)(later(job('f'.repeat(40)), 7, 8))).toMatchObject({
      outcome: 'deferred',
      code: 'GIT_REPOSITORY_UNAVAILABLE',
    });
  });

  it('a malformed job fails permanently', async () => {
    await expect(processor()({ id: 'bad', data: { v: 1, kind: 'commit', sha: 'nope' } } as unknown as Job)).rejects.toBeInstanceOf(
      UnrecoverableError,
    );
  });

  it('bytes that do not hash to the job sha are never verified', async () => {
    const sha = repo.commit('signed 3', { signWith: key });
    repo.push();
    const raw = readFileSync(join(repo.bareDir, 'HEAD'));
    const v = await verifyCommit(raw, policy, { expectedSha: sha });
    expect(v).toMatchObject({ ok: false, code: 'COMMIT_ID_MISMATCH' });
  });
});

describe('where the verifier fetches from, and the branch proof (issue #10)', () => {
  /** A mirror that records every URL it is asked about and fails: shows what a job would have fetched. */
  function recordingMirror(): { mirror: GitMirror; urls: string[] } {
    const urls: string[] = [];
    const fail = async (url: string) => {
      urls.push(url);
      throw new Error('recording mirror: no fetch');
    };
    return {
      urls,
      mirror: {
        resolveUrl: (u) => u,
        ensureCommit: fail,
        readCommit: fail,
        isAncestor: fail,
        listHeads: fail,
        recentAncestors: fail,
        proveOnBranch: fail,
      },
    };
  }
  async function queued(deliveryId: string, sha: string): Promise<CommitVerdictJob | undefined> {
    return (await gateQueue.getJob(verdictJobId({ deliveryId, sha, repoUrl: FOLLOWED.repoUrl, branch: 'main' })))?.data as
      CommitVerdictJob | undefined;
  }

  it('a payload whose clone_url differs from the followed repoURL fetches the followed one', async () => {
    const sha = repo.commit('signed, fetched from the followed url', { signWith: key });
    repo.push();
    // The attacker's clone_url is not even reachable: only the followed URL (rewritten to the local remote) is.
    const out = (await processor()(job(sha, 'https://attacker.example/org/app.git'))) as CommitVerdictJob;
    expect(out).toMatchObject({
      outcome: 'verified',
      cloneUrl: GH,
      repoUrl: 'https://github.com/org/app',
      onBranch: true,
      branchHead: sha,
    });
  });

  it('a repository nobody follows: no fetch, no verdict, no retry', async () => {
    const rec = recordingMirror();
    const j = job('d'.repeat(40), 'https://attacker.example/x.git', { repoUrl: 'https://attacker.example/x' });
    expect(await processor({}, undefined, rec.mirror)(j)).toBeNull();
    expect(rec.urls).toEqual([]);
    expect(await queued((j.data as VerifyCommitJob).deliveryId, 'd'.repeat(40))).toBeUndefined();
  });

  it('a followed repository on a host outside the credential scope: rejected verdict, nothing fetched', async () => {
    const rec = recordingMirror();
    const refused = async () => ({ ...FOLLOWED, refused: 'repository host "evil.example" is not in GIT_CREDENTIAL_HOSTS' });
    const out = (await processor({}, refused, rec.mirror)(job('d'.repeat(40)))) as CommitVerdictJob;
    expect(out).toMatchObject({ outcome: 'rejected', code: 'GIT_HOST_NOT_ALLOWED' });
    expect(out.onBranch).toBeUndefined();
    expect(rec.urls).toEqual([]);
  });

  it('before the gate published the set: transient (retried), nothing fetched', async () => {
    const rec = recordingMirror();
    await expect(processor({}, async () => undefined, rec.mirror)(job('d'.repeat(40)))).rejects.toMatchObject({
      code: 'FOLLOWED_SET_MISSING',
      transient: true,
    });
    expect(rec.urls).toEqual([]);
  });

  it('a signed feature-branch commit claimed as main: verified signature, but onBranch false naming the real head', async () => {
    const mainHead = repo.commit('main head', { signWith: key });
    repo.push('main');
    repo.git('checkout', '--quiet', '-b', 'feature-x');
    const feature = repo.commit('feature only', { signWith: key });
    repo.push('feature-x');
    repo.git('checkout', '--quiet', 'main');
    const out = (await processor()(job(feature))) as CommitVerdictJob;
    expect(out).toMatchObject({ outcome: 'verified', onBranch: false, branchHead: mainHead });
  });

  it('a branch name that is not a git ref name is a rejected verdict without proof', async () => {
    const sha = repo.head();
    const out = (await processor()(job(sha, GH, { branch: 'main:refs/heads/x' }))) as CommitVerdictJob;
    expect(out).toMatchObject({ outcome: 'rejected', code: 'GIT_BAD_BRANCH' });
    expect(out.onBranch).toBeUndefined();
  });
});
