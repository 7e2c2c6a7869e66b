import { normalizeRepoUrl } from '@gitops-gate/contracts';
/**
 * Reconcile against real git (ls-remote of bare repositories), a real Redis (audit trail, in-flight leases) and a real
 * BullMQ queue (job-id de-duplication is what hid heads before): only final decisions cover a head, and job ids are
 * unique per repository, branch and head.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGitMirror } from '@gitops-gate/git';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, startTestRedis, type TestRedis, type TestRepo } from '@gitops-gate/testing';
import { createAuditTrail, createReconcileMarks } from '@gitops-gate/gate-store';
import type { Application } from './applications.js';
import type { AuditTrail } from './audit.js';
import type { ApplicationStore } from './application-store.js';
import { createReconciler, reconcileJob, reconcileKey, type ReconcileTarget } from './reconcile.js';

const silent = createLogger('reconcile-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const SHOP = 'https://github.com/org/shop';
const FORK = 'https://github.com/other/shop';

let redis: TestRedis;
let conn: Redis;
let repo: TestRepo;
let forkBare: string;
let prefix: string;
let queue: Queue;
let audit: AuditTrail;

function app(name: string, repoURL: string, branch: string, targetRevision: string): Application {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name, namespace: 'argocd', resourceVersion: '1', annotations: { 'gitops-gate.io/branch': branch } },
    spec: { source: { repoURL, targetRevision } },
  };
}

function storeOf(apps: Application[]): ApplicationStore {
  return {
    list: async () => apps,
    get: async () => {
      throw new Error('not used');
    },
    patch: async () => {
      throw new Error('not used');
    },
  };
}

function reconciler(apps: Application[], extra: Partial<Parameters<typeof createReconciler>[0]> = {}) {
  const mirror = createGitMirror({
    cacheDir: mkdtempSync(join(tmpdir(), 'gg-rec-git-')),
    urlRewrites: { [SHOP]: repo.url, [FORK]: `file://${forkBare}` },
  });
  return createReconciler({
    store: storeOf(apps),
    namespaces: [],
    listHeads: (url) => mirror.listHeads(url),
    audit,
    marks: createReconcileMarks(conn, prefix),
    logger: silent,
    // Every opted-in repository is followed, fetched from the URL the Application names (followed-repos.test.ts
    // covers how the gate builds the set).
    followed: (list) =>
      list.flatMap((a) =>
        a.spec?.source?.repoURL
          ? [{ repoUrl: normalizeRepoUrl(a.spec.source.repoURL), fetchUrl: a.spec.source.repoURL, branches: [] }]
          : [],
      ),
    // As the gate's main.ts does it.
    enqueue: async (t) => {
      const { data, jobId } = reconcileJob(t);
      await queue.add('commit', data, { jobId });
    },
    ...extra,
  });
}

async function queuedJobs() {
  return (await queue.getJobs(['waiting', 'delayed', 'active', 'completed'])).map((j) => ({
    id: j.id ?? '',
    repoUrl: j.data.repoUrl as string,
    branch: j.data.branch as string,
    sha: j.data.sha as string,
  }));
}

function record(appName: string, sha: string, action: string) {
  return audit.record({
    deliveryId: 'd',
    repo: SHOP,
    branch: 'main',
    sha,
    app: `argocd/${appName}`,
    action,
    reason: action,
    verdict: { outcome: 'deferred', method: 'none', code: 'X', reasons: [] },
  });
}

beforeAll(async () => {
  redis = await startTestRedis();
  conn = createRedisConnection(redis.url, 'worker');
  repo = createTestRepo();
  forkBare = join(mkdtempSync(join(tmpdir(), 'gg-fork-')), 'fork.git');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', forkBare]);
});
afterAll(async () => {
  await queue?.close();
  conn.disconnect();
  await redis.close();
});
beforeEach(async () => {
  await queue?.close();
  prefix = `rec-${randomUUID().slice(0, 8)}`;
  queue = new Queue('verify', { connection: conn, prefix });
  audit = createAuditTrail(conn, prefix);
});

describe('reconcile', () => {
  it('one commit at the head of two branches and of a fork: three jobs, ids unique per repository, branch and head', async () => {
    const base = repo.commit('base');
    const head = repo.commit('head');
    repo.push('main');
    repo.push('release');
    repo.git('push', '--quiet', forkBare, 'HEAD:refs/heads/main');
    const r = reconciler([app('shop', SHOP, 'main', base), app('shop-release', SHOP, 'release', base), app('fork', FORK, 'main', base)]);
    const queued = await r.runOnce();
    expect(queued.map((t) => `${t.repoUrl}#${t.branch}@${t.sha}`).sort()).toEqual([
      `${SHOP}#main@${head}`,
      `${SHOP}#release@${head}`,
      `${FORK}#main@${head}`,
    ]);
    // Before: every one was `gh-reconcile-<sha>`, so BullMQ kept the first and silently dropped the other two.
    const jobs = await queuedJobs();
    expect(jobs.map((j) => `${j.repoUrl}#${j.branch}`).sort()).toEqual([`${SHOP}#main`, `${SHOP}#release`, `${FORK}#main`]);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(3);
    for (const j of jobs) expect(j.id).toMatch(/^gh-reconcile-[0-9a-f]{12}-[0-9a-f]{24}-[0-9a-z]+$/);
  });

  it('a head whose only decision is deferred-* is queued again; a final decision (even a refusal) covers it', async () => {
    repo.commit('base 2');
    const head = repo.commit('head 2');
    repo.push('main');
    await record('shop', head, 'deferred-transient');
    await record('other', head, 'refuse-unsigned');
    const r = reconciler([app('shop', SHOP, 'main', 'a'.repeat(40)), app('other', SHOP, 'main', 'a'.repeat(40))]);
    // Before: any record counted, so a Rekor outage or a not-yet-replicated commit ended the story for this head.
    const queued = await r.runOnce();
    expect(queued.map((t) => t.sha)).toEqual([head]);
    expect(await audit.decidedApps(head)).toEqual(new Set(['argocd/other']));

    await record('shop', head, 'pin');
    // The lease of the pass above lapses; the head is still not queued: the pin covers it.
    await conn.del(`${prefix}:reconcile-queued:${reconcileKey({ repoUrl: SHOP, branch: 'main', sha: head })}`);
    expect(await r.runOnce()).toEqual([]);
  });

  it('attacker: an Application naming a repository that is not owner/name is skipped, the others still reconciled', async () => {
    repo.commit('base 6');
    const head = repo.commit('head 6');
    repo.push('main');
    const NESTED = 'https://git.example.com/group/sub/shop';
    const mirror = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-rec-git-')), urlRewrites: { [SHOP]: repo.url } });
    const r = reconciler([app('nested', NESTED, 'main', 'a'.repeat(40)), app('shop', SHOP, 'main', 'a'.repeat(40))], {
      // Both URLs list the same heads: only the name decides what happens.
      listHeads: (url) => mirror.listHeads(url === NESTED ? SHOP : url),
    });
    const queued = await r.runOnce();
    expect(queued.map((t) => `${t.repoUrl}@${t.sha}`)).toEqual([`${SHOP}@${head}`]);
    expect((await queuedJobs()).map((j) => j.repoUrl)).toEqual([SHOP]);
  });

  it('an Application already on the head needs nothing', async () => {
    const head = repo.commit('head 3');
    repo.push('main');
    expect(await reconciler([app('shop', SHOP, 'main', head)]).runOnce()).toEqual([]);
  });

  it('a head in flight is queued once; after requeueAfterMs, if still not covered, again under a new delivery id', async () => {
    repo.commit('base 4');
    const head = repo.commit('head 4');
    repo.push('main');
    let t = 1_000_000;
    const r = reconciler([app('shop', SHOP, 'main', 'a'.repeat(40))], { requeueAfterMs: 300, now: () => t });
    const first = await r.runOnce();
    expect(first).toHaveLength(1);
    expect(await r.runOnce()).toEqual([]);
    await new Promise((res) => setTimeout(res, 400));
    t += 400;
    const second = await r.runOnce();
    expect(second.map((x) => x.sha)).toEqual([head]);
    expect(second[0]!.deliveryId).not.toBe(first[0]!.deliveryId);
    expect(await queuedJobs()).toHaveLength(2);
  });

  it('a failed enqueue does not hold the head back until the lease expires', async () => {
    repo.commit('head 5');
    repo.push('main');
    let fail = true;
    const r = reconciler([app('shop', SHOP, 'main', 'a'.repeat(40))], {
      enqueue: async (target: ReconcileTarget) => {
        if (fail) throw new Error('redis down');
        const { data, jobId } = reconcileJob(target);
        await queue.add('commit', data, { jobId });
      },
    });
    await expect(r.runOnce()).rejects.toThrow('redis down');
    fail = false;
    expect(await r.runOnce()).toHaveLength(1);
  });
});
