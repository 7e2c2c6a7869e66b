/**
 * Issue #15 at the gate: GET-free patches from the watch cache (a stale copy is refused by the API server, never
 * written, and never decides a refusal), fan-out to many Applications under the client-side write limiter, and
 * writes coalesced per Application when several verdicts of one branch are in flight.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { createGitMirror } from '@gitops-gate/git';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, startTestRedis, type TestRedis, type TestRepo } from '@gitops-gate/testing';
import {
  createAuditTrail,
  createCachedApplicationStore,
  createKubeApplicationStore,
  createRedisLock,
  type CachedApplicationStore,
} from '@gitops-gate/gate-store';
import type { Application } from './applications.js';
import { createGate } from './gate.js';
import type { ApplicationStore } from './application-store.js';
import { createTokenBucket, pacedWrites } from './rate-limit.js';

const REPO = 'https://github.com/org/app.git';
const silent = createLogger('fan-out-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));

let redisServer: TestRedis;
let redis: Redis;
let sandbox: SandboxApiServer;
let base: ApplicationStore;
let repo: TestRepo;
let prefix: string;
let cached: CachedApplicationStore | undefined;

function verdict(sha: string, ancestors: string[] = []): CommitVerdictJob {
  return {
    v: 1,
    kind: 'commit-verdict',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/org/app',
    cloneUrl: REPO,
    repoFullName: 'org/app',
    branch: 'main',
    sha,
    outcome: 'verified',
    method: 'ssh',
    signer: { identity: 'dev@example.com' },
    code: 'VERIFIED',
    reasons: [],
    rule: 'test',
    verifiedAt: new Date().toISOString(),
    onBranch: true,
    branchHead: sha,
    ancestors,
    policies: [{ name: 'test', namespace: 'argocd', mode: 'Enforce', selector: {}, ok: true, code: 'VERIFIED' }],
  };
}

/** Counts the requests the gate makes through a store. */
function counting(store: ApplicationStore): ApplicationStore & { counts: { get: number; patch: number; list: number } } {
  const counts = { get: 0, patch: 0, list: 0 };
  return {
    counts,
    list: (ns) => ((counts.list += 1), store.list(ns)),
    get: (ns, name) => ((counts.get += 1), store.get(ns, name)),
    patch: (ns, name, body) => ((counts.patch += 1), store.patch(ns, name, body)),
    ...(store.peek ? { peek: (ns: string, name: string) => store.peek?.(ns, name) } : {}),
  };
}

function makeGate(store: ApplicationStore) {
  const mirror = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-fan-git-')), urlRewrites: { [REPO]: repo.url } });
  return createGate({
    store,
    lock: createRedisLock(redis, prefix),
    audit: createAuditTrail(redis, prefix),
    logger: silent,
    namespaces: [],
    isAncestor: (url, a, d) => mirror.isAncestor(url, a, d),
  });
}

async function startCache(): Promise<CachedApplicationStore> {
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  cached = createCachedApplicationStore(kc, base, [], silent);
  await cached.start();
  return cached;
}

async function rev(name = 'app'): Promise<string | undefined> {
  return (await base.get('argocd', name)).spec?.source?.targetRevision;
}

/** Waits until the watch cache shows `name` at `sha` (the informer follows the API server within milliseconds). */
async function cacheShows(store: CachedApplicationStore, name: string, sha: string): Promise<void> {
  for (let i = 0; i < 200 && store.peek?.('argocd', name)?.spec?.source?.targetRevision !== sha; i++)
    await new Promise((r) => setTimeout(r, 10));
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = createRedisConnection(redisServer.url, 'worker');
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.close();
});
beforeEach(async () => {
  prefix = `f-${randomUUID().slice(0, 8)}`;
  repo = createTestRepo();
  const seed = [demoApplication({ name: 'app', namespace: 'argocd', repoURL: REPO, branch: 'main' })];
  for (let i = 0; i < 60; i++) seed.push(demoApplication({ name: `fan-${i}`, namespace: 'argocd', repoURL: REPO, branch: 'fan' }));
  sandbox = await createSandboxApiServer({ seed });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  base = createKubeApplicationStore(kc);
});
afterEach(async () => {
  await cached?.stop();
  cached = undefined;
  await sandbox.close();
});

describe('GET-free patches', { timeout: 30_000 }, () => {
  it('a pin from a synced watch cache is one PATCH and no GET', async () => {
    const store = counting(await startCache());
    const a = repo.commit('a');
    repo.push();
    const out = await makeGate(store).applyVerdict(verdict(a));
    expect(out.map((o) => o.action)).toEqual(['pin']);
    expect(store.counts).toEqual({ list: 1, get: 0, patch: 1 });
    expect(await rev()).toBe(a);
  });

  it('attacker-ish race: a stale cached copy (older commit, older resourceVersion) is refused, re-read, and never moves the pin backwards', async () => {
    const a = repo.commit('a');
    const b = repo.commit('b');
    const c = repo.commit('c');
    repo.push();
    await makeGate(base).applyVerdict(verdict(a));
    const stale = await base.get('argocd', 'app');
    // Someone (another replica) moves the Application on to c; this gate's cache still shows a.
    await makeGate(base).applyVerdict(verdict(c));
    const store = counting({ ...base, peek: (_ns, name) => (name === 'app' ? structuredClone(stale) : undefined) });
    const out = await makeGate(store).applyVerdict(verdict(b));
    expect(out[0]?.action).toBe('skip-older');
    expect(await rev()).toBe(c);
    // The cached attempt's PATCH was refused (409); the decision that counted was made on a GET.
    expect(store.counts.patch).toBe(1);
    expect(store.counts.get).toBeGreaterThanOrEqual(1);
  });

  it('a refusal decided on a stale cached copy is decided again on a fresh read (a lagging cache cannot lose a pin)', async () => {
    const a = repo.commit('a');
    repo.push();
    const live = await base.get('argocd', 'app');
    // The cache still shows the Application before it opted in for this branch.
    const stale: Application = structuredClone(live);
    stale.metadata.annotations = { ...stale.metadata.annotations, 'gitops-gate.io/branch': 'other' };
    const store = counting({ ...base, peek: () => structuredClone(stale) });
    const out = await makeGate(store).applyVerdict(verdict(a));
    expect(out[0]?.action).toBe('pin');
    expect(await rev()).toBe(a);
  });
});

describe('fan-out', { timeout: 30_000 }, () => {
  it('Kubernetes requests reuse one kept-alive connection (client-node builds an Agent per request otherwise)', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(sandbox.kubeconfigYaml());
    const target = kc as unknown as { createDispatcher: (c: unknown, o: Record<string, unknown>) => unknown };
    const original = target.createDispatcher.bind(kc);
    let built = 0;
    target.createDispatcher = (c, o) => ((built += 1), original(c, o));
    const store = createKubeApplicationStore(kc);
    for (let i = 0; i < 5; i++) await store.get('argocd', 'app');
    await store.patch('argocd', 'app', { metadata: { labels: { x: 'y' } } });
    expect(built).toBe(1);
  });

  it('one verdict, 60 Applications, writes paced by the token bucket: all pinned, one PATCH each, no GET', async () => {
    const cache = await startCache();
    const store = counting(pacedWrites(cache, createTokenBucket({ qps: 300, burst: 20 })));
    const a = repo.commit('a');
    repo.push();
    const out = await makeGate(store).applyVerdict({ ...verdict(a), branch: 'fan' });
    expect(out).toHaveLength(60);
    expect(out.every((o) => o.action === 'pin')).toBe(true);
    expect(store.counts).toEqual({ list: 1, get: 0, patch: 60 });
    for (let i = 0; i < 60; i += 13) expect(await rev(`fan-${i}`)).toBe(a);
  });
});

describe('coalescing per Application', { timeout: 30_000 }, () => {
  it('three verdicts of one branch in flight: the newest is pinned, the older ones are skipped without a write or a fetch', async () => {
    const cache = await startCache();
    const a = repo.commit('a');
    const b = repo.commit('b');
    const c = repo.commit('c');
    repo.push();
    const store = counting(cache);
    let gitCalls = 0;
    const mirror = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-fan-git-')), urlRewrites: { [REPO]: repo.url } });
    const gate = createGate({
      store,
      lock: createRedisLock(redis, prefix),
      audit: createAuditTrail(redis, prefix),
      logger: silent,
      namespaces: [],
      isAncestor: (url, x, y) => ((gitCalls += 1), mirror.isAncestor(url, x, y)),
    });
    const outs = await Promise.all([
      gate.applyVerdict(verdict(a)),
      gate.applyVerdict(verdict(b, [a])),
      gate.applyVerdict(verdict(c, [b, a])),
    ]);
    expect(outs.map((o) => o[0]?.action)).toEqual(['skip-older', 'skip-older', 'pin']);
    expect(await rev()).toBe(c);
    await cacheShows(cache, 'app', c);
    expect(store.counts.patch).toBe(1);
    expect(gitCalls).toBe(0);
  });

  it('the newer verdict is refused: the older one is still pinned (coalescing reorders, never drops)', async () => {
    await startCache();
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    const gate = makeGate(cached!);
    const refused: CommitVerdictJob = {
      ...verdict(b, [a]),
      outcome: 'rejected',
      code: 'UNSIGNED',
      method: 'none',
      signer: undefined,
      policies: [{ name: 'test', namespace: 'argocd', mode: 'Enforce', selector: {}, ok: false, code: 'UNSIGNED' }],
    };
    const outs = await Promise.all([gate.applyVerdict(verdict(a)), gate.applyVerdict(refused)]);
    expect(outs.map((o) => o[0]?.action)).toEqual(['pin', 'refuse-unverified']);
    expect(await rev()).toBe(a);
  });
});
