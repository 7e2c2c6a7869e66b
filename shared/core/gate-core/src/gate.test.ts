/**
 * The gate's rules against the sandbox API server through the real @kubernetes/client-node store, a real Redis lock
 * and real git ancestry.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CommitVerdictJob, ImageVerdictJob, PolicyResult } from '@gitops-gate/contracts';
import { createGitMirror } from '@gitops-gate/git';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, startTestRedis, type TestRedis, type TestRepo } from '@gitops-gate/testing';
import { createAuditTrail, createImageState, createKubeApplicationStore, createRedisLock } from '@gitops-gate/gate-store';
import { createGate, type Gate } from './gate.js';
import type { ApplicationStore } from './application-store.js';
import type { Application } from './applications.js';
import type { LivePolicy } from '@gitops-gate/policy';

const REPO = 'https://github.com/org/app.git';
const silent = createLogger('gate-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));

let redisServer: TestRedis;
let redis: Redis;
let sandbox: SandboxApiServer;
let store: ApplicationStore;
let repo: TestRepo;
let prefix: string;

function verdict(sha: string, outcome: 'verified' | 'rejected' = 'verified'): CommitVerdictJob {
  return {
    v: 1,
    kind: 'commit-verdict',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/org/app',
    cloneUrl: REPO,
    repoFullName: 'org/app',
    branch: 'main',
    sha,
    outcome,
    method: outcome === 'verified' ? 'ssh' : 'none',
    signer: outcome === 'verified' ? { identity: 'dev@example.com' } : undefined,
    code: outcome === 'verified' ? 'VERIFIED' : 'UNSIGNED',
    reasons: [],
    rule: 'test',
    verifiedAt: new Date().toISOString(),
    onBranch: true,
    branchHead: sha,
    policies: [
      {
        name: 'test',
        namespace: 'argocd',
        mode: 'Enforce',
        selector: {},
        ok: outcome === 'verified',
        code: outcome === 'verified' ? 'VERIFIED' : 'UNSIGNED',
      },
    ],
  };
}

function makeGate(overrides: Partial<Parameters<typeof createGate>[0]> = {}): Gate {
  const mirror = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-gate-git-')), urlRewrites: { [REPO]: repo.url } });
  return createGate({
    store,
    lock: createRedisLock(redis, prefix),
    audit: createAuditTrail(redis, prefix),
    logger: silent,
    namespaces: [],
    isAncestor: (url, a, d) => mirror.isAncestor(url, a, d),
    ...overrides,
  });
}

async function rev(name = 'app'): Promise<string | undefined> {
  const app = await store.get('argocd', name);
  return app.spec?.source?.targetRevision;
}

async function createApp(obj: object): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  await kc
    .makeApiClient(CustomObjectsApi)
    .createNamespacedCustomObject({ group: 'argoproj.io', version: 'v1alpha1', namespace: 'argocd', plural: 'applications', body: obj });
}

/** `multi`: a chart source (index 0, not ours) and the tracked repository (index 1). */
function createMultiSourceApp(): Promise<void> {
  return createApp({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: 'multi', namespace: 'argocd', annotations: { 'gitops-gate.io/branch': 'main' } },
    spec: {
      project: 'default',
      destination: { server: 'https://kubernetes.default.svc', namespace: 'default' },
      sources: [
        { repoURL: 'https://charts.example.com', chart: 'x', targetRevision: '1.2.3' },
        { repoURL: 'git@github.com:org/app.git', path: 'deploy', targetRevision: 'main' },
      ],
    },
  });
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
  await sandbox?.close();
  prefix = `g-${randomUUID().slice(0, 8)}`;
  repo = createTestRepo();
  sandbox = await createSandboxApiServer({ seed: [demoApplication({ name: 'app', namespace: 'argocd', repoURL: REPO, branch: 'main' })] });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  store = createKubeApplicationStore(kc);
});

describe('gate', () => {
  it('pins a verified commit and moves forward only along history', async () => {
    const gate = makeGate();
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    expect((await gate.applyVerdict(verdict(a)))[0]?.action).toBe('pin');
    expect(await rev()).toBe(a);
    expect((await gate.applyVerdict(verdict(b)))[0]?.action).toBe('pin');
    expect(await rev()).toBe(b);
  });

  it('history carried in the verdict answers ancestry without the gate fetching', async () => {
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    await makeGate().applyVerdict(verdict(a));
    const noGit = makeGate({
      isAncestor: async () => {
        throw new Error('the gate should not need git here');
      },
    });
    const out = await noGit.applyVerdict({ ...verdict(b), ancestors: [b, a] });
    expect(out[0]?.action).toBe('pin');
    expect(await rev()).toBe(b);
  });

  it('a late older verdict changes nothing', async () => {
    const gate = makeGate();
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    await gate.applyVerdict(verdict(b));
    const out = await gate.applyVerdict(verdict(a));
    expect(out[0]?.action).toBe('skip-older');
    expect(await rev()).toBe(b);
  });

  it('a force-pushed rewrite is refused with that reason', async () => {
    const gate = makeGate();
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    await gate.applyVerdict(verdict(b));
    repo.git('reset', '--hard', a);
    const x = repo.commit('rewritten');
    repo.push('main', true);
    const out = await gate.applyVerdict(verdict(x));
    expect(out[0]?.action).toBe('refuse-rewrite');
    expect(out[0]?.reason).toMatch(/history was rewritten/);
    expect(await rev()).toBe(b);
  });

  it('a rejected verdict never pins', async () => {
    const gate = makeGate();
    const a = repo.commit('a');
    repo.push();
    const out = await gate.applyVerdict(verdict(a, 'rejected'));
    expect(out[0]?.action).toBe('refuse-unverified');
    expect(await rev()).toBe('main');
  });

  it('two gate writers racing on one Application: both succeed in order, one write each, never backwards', async () => {
    const shas = Array.from({ length: 6 }, (_, i) => repo.commit(`c${i}`));
    repo.push();
    // Two gates (two replicas) with their own mirrors, sharing Redis and the API server.
    const g1 = makeGate();
    const g2 = makeGate();
    const shuffled = [...shas].sort(() => Math.random() - 0.5);
    await Promise.all(shuffled.map((s, i) => (i % 2 ? g1 : g2).applyVerdict(verdict(s))));
    expect(await rev()).toBe(shas[shas.length - 1]);
  });

  it('409 from the API server (a write between read and patch) → re-read and retry', async () => {
    let conflicts = 0;
    const gate = makeGate({ onConflict: () => (conflicts += 1) });
    const a = repo.commit('a');
    repo.push();
    sandbox.injectFault({ method: 'PATCH', status: 409, count: 2 });
    expect((await gate.applyVerdict(verdict(a)))[0]?.action).toBe('pin');
    expect(conflicts).toBe(2);
    expect(await rev()).toBe(a);
  });

  it('without the lock, the preconditions still stop a stale write (422 from the moved targetRevision → re-decide)', async () => {
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    const noLock = { withLock: <T>(_k: string, fn: () => Promise<T>) => fn() };
    // Store that lets another writer in between our read and our patch, once.
    let injected = false;
    const racing: ApplicationStore = {
      ...store,
      async patch(ns, name, body) {
        if (!injected) {
          injected = true;
          const cur = await store.get(ns, name);
          await store.patch(ns, name, {
            metadata: { resourceVersion: cur.metadata.resourceVersion },
            spec: { ...cur.spec, source: { ...cur.spec?.source, targetRevision: b } },
          });
        }
        return store.patch(ns, name, body);
      },
    };
    const gate = makeGate({ store: racing, lock: noLock });
    const out = await gate.applyVerdict(verdict(a));
    // The other writer moved it to b; a is older, so the re-decision skips instead of regressing.
    expect(out[0]?.action).toBe('skip-older');
    expect(await rev()).toBe(b);
  });

  it('403 and 422 from the API server are recorded outcomes, not retries', async () => {
    const gate = makeGate();
    const a = repo.commit('a');
    repo.push();
    sandbox.deny({ verb: 'patch', resource: 'applications' });
    const out = await gate.applyVerdict(verdict(a));
    expect(out[0]?.action).toBe('forbidden');
    sandbox.clearFaults();
    sandbox.injectFault({ method: 'PATCH', status: 422, count: 1 });
    const out2 = await gate.applyVerdict(verdict(a));
    expect(out2[0]?.action).toBe('invalid');
  });

  it('5xx from the API server is transient: applyVerdict throws so the job is retried', async () => {
    const gate = makeGate();
    const a = repo.commit('a');
    repo.push();
    sandbox.injectFault({ method: 'GET', status: 503, count: 100 });
    await expect(gate.applyVerdict(verdict(a))).rejects.toMatchObject({ code: 'UNAVAILABLE', transient: true });
    sandbox.clearFaults();
    expect((await gate.applyVerdict(verdict(a)))[0]?.action).toBe('pin');
  });

  it('an Application deleted between list and write is a clear not-found outcome', async () => {
    const a = repo.commit('a');
    repo.push();
    const vanishing: ApplicationStore = {
      ...store,
      async get() {
        const { KubeError } = await import('./application-store.js');
        throw new KubeError('NOT_FOUND', 404, 'get application argocd/app: applications.argoproj.io "app" not found');
      },
      // The write that follows the (cached) list meets the deletion too.
      async patch() {
        const { KubeError } = await import('./application-store.js');
        throw new KubeError('NOT_FOUND', 404, 'patch application argocd/app: applications.argoproj.io "app" not found');
      },
    };
    const out = await makeGate({ store: vanishing }).applyVerdict(verdict(a));
    expect(out[0]?.action).toBe('not-found');
  });

  it('pins every tracking source of a multi-source Application and leaves the others', async () => {
    await createMultiSourceApp();
    const a = repo.commit('a');
    repo.push();
    await makeGate().applyVerdict(verdict(a));
    const multi = await store.get('argocd', 'multi');
    expect(multi.spec?.sources?.[0]?.targetRevision).toBe('1.2.3');
    expect(multi.spec?.sources?.[1]?.targetRevision).toBe(a);
  });

  describe('the pin patch writes only what the gate owns (#18.3)', () => {
    /** A store that runs `between` once, after the gate's read and before its write, and keeps the bodies sent. */
    function racingStore(between: (cur: Application) => Promise<void>, target = 'app'): ApplicationStore & { bodies: unknown[] } {
      let done = false;
      const bodies: unknown[] = [];
      return {
        ...store,
        bodies,
        async patch(ns, name, body) {
          bodies.push(body);
          if (!done && name === target) {
            done = true;
            await between(await store.get(ns, name));
          }
          return store.patch(ns, name, body);
        },
      };
    }

    it('the pin is a JSON patch of targetRevision and gitops-gate annotations, with preconditions, never the spec as read', async () => {
      const a = repo.commit('a');
      repo.push();
      const spy = racingStore(async () => undefined);
      expect((await makeGate({ store: spy }).applyVerdict(verdict(a)))[0]?.action).toBe('pin');
      const body = spy.bodies[0];
      expect(Array.isArray(body)).toBe(true);
      const ops = body as { op: string; path: string; value: string }[];
      for (const o of ops.filter((x) => x.op !== 'test')) {
        expect(o.path).toMatch(
          /^\/spec\/source\/targetRevision$|^\/metadata\/annotations\/gitops-gate\.io~1|^\/metadata\/resourceVersion$/,
        );
      }
      expect(ops).toContainEqual({ op: 'test', path: '/spec/source/targetRevision', value: 'main' });
      expect(ops).toContainEqual({ op: 'add', path: '/spec/source/targetRevision', value: a });
      expect(await rev()).toBe(a);
    });

    it("Argo CD's unconditional status/syncPolicy write between read and write is kept and costs exactly one retry", async () => {
      const a = repo.commit('a');
      repo.push();
      let conflicts = 0;
      // Argo CD's controller writes status with a merge patch that carries no resourceVersion (no status subresource).
      const argo = racingStore(async () => {
        await store.patch('argocd', 'app', {
          status: { sync: { status: 'OutOfSync' }, health: { status: 'Progressing' } },
          spec: { syncPolicy: { automated: { prune: true } } },
        });
      });
      const out = await makeGate({ store: argo, onConflict: () => (conflicts += 1) }).applyVerdict(verdict(a));
      expect(out[0]?.action).toBe('pin');
      expect(conflicts).toBe(1);
      const app = await store.get('argocd', 'app');
      expect(app.spec?.source?.targetRevision).toBe(a);
      expect(app.spec?.['syncPolicy']).toEqual({ automated: { prune: true } });
      expect(app['status']).toMatchObject({ sync: { status: 'OutOfSync' }, health: { status: 'Progressing' } });
    });

    it('multi-source: a concurrent edit of a sibling source (a chart bump) is kept, not re-sent as read', async () => {
      await createMultiSourceApp();
      const a = repo.commit('a');
      repo.push();
      const bump = racingStore(async (cur) => {
        const sources = structuredClone(cur.spec?.sources ?? []);
        sources[0]!.targetRevision = '1.2.4';
        await store.patch('argocd', 'multi', { metadata: { resourceVersion: cur.metadata.resourceVersion }, spec: { sources } });
      }, 'multi');
      const out = await makeGate({ store: bump }).applyVerdict(verdict(a));
      expect(out.find((o) => o.app === 'argocd/multi')?.action).toBe('pin');
      const multi = await store.get('argocd', 'multi');
      expect(multi.spec?.sources?.[0]?.targetRevision).toBe('1.2.4');
      expect(multi.spec?.sources?.[1]?.targetRevision).toBe(a);
      // Nothing of sources[0] was in any body the gate sent.
      expect(JSON.stringify(bump.bodies)).not.toContain('charts.example.com');
    });

    it('an editor re-pointing repoURL between read and write: the precondition fails (422) and the gate decides again', async () => {
      const a = repo.commit('a');
      repo.push();
      let conflicts = 0;
      const repoint = racingStore(async (cur) => {
        await store.patch('argocd', 'app', {
          metadata: { resourceVersion: cur.metadata.resourceVersion },
          spec: { source: { repoURL: 'https://github.com/evil/fork.git' } },
        });
      });
      const out = await makeGate({ store: repoint, onConflict: () => (conflicts += 1) }).applyVerdict(verdict(a));
      expect(out[0]?.action).toBe('not-found');
      expect(conflicts).toBe(1);
      const app = await store.get('argocd', 'app');
      expect(app.spec?.source).toMatchObject({ repoURL: 'https://github.com/evil/fork.git', targetRevision: 'main' });
      expect(app.metadata.annotations?.['gitops-gate.io/verified-sha']).toBeUndefined();
    });

    it('fail closed: an Application read without a resourceVersion is never written unconditionally', async () => {
      const a = repo.commit('a');
      repo.push();
      const noVersion: ApplicationStore = {
        ...store,
        async get(ns, name) {
          const app = await store.get(ns, name);
          delete app.metadata.resourceVersion;
          return app;
        },
        async list(ns) {
          const apps = await store.list(ns);
          for (const app of apps) delete app.metadata.resourceVersion;
          return apps;
        },
      };
      await expect(makeGate({ store: noVersion }).applyVerdict(verdict(a))).rejects.toMatchObject({ code: 'NO_RESOURCE_VERSION' });
      expect(await rev()).toBe('main');
    });
  });

  it('records every decision in a hash chain that detects edits and deletions', async () => {
    const logged: string[] = [];
    const audit = createAuditTrail(redis, prefix, undefined, (r) => logged.push(`${r.action}:${r.sha}`));
    const gate = makeGate({ audit });
    const a = repo.commit('a');
    const b = repo.commit('b');
    repo.push();
    await gate.applyVerdict(verdict(a));
    await gate.applyVerdict(verdict(b));
    await gate.applyVerdict(verdict(a));
    const recs = await audit.query({ app: 'argocd/app' });
    expect(recs.map((r) => r.action)).toEqual(['skip-older', 'pin', 'pin']);
    expect(logged).toEqual([`pin:${a}`, `pin:${b}`, `skip-older:${a}`]);
    expect(recs[1]?.previousRevision).toBe(a);
    expect((await audit.verifyChain()).ok).toBe(true);
    expect(await audit.decidedApps(a)).toEqual(new Set(['argocd/app']));
    expect(await audit.decidedApps('f'.repeat(40))).toEqual(new Set());
    // Edit the middle record in place.
    const entries = await redis.xrange(`${prefix}:audit`, '-', '+');
    const [id, fields] = entries[1]!;
    const rec = JSON.parse(fields[fields.indexOf('record') + 1]!);
    rec.reason = 'nothing to see';
    await redis.xdel(`${prefix}:audit`, id);
    await redis.xadd(`${prefix}:audit`, '*', 'app', rec.app, 'sha', rec.sha, 'record', JSON.stringify(rec));
    const check = await audit.verifyChain();
    expect(check.ok).toBe(false);
    expect(check.problems.join('\n')).toMatch(/modified|does not follow/);
  });

  it('a pin whose audit write was lost (gate crashed after the PATCH) is recorded on retry with the same decision id', async () => {
    const a = repo.commit('a');
    repo.push();
    const audit = createAuditTrail(redis, prefix);
    const lossy = {
      ...audit,
      record: async () => {
        throw new Error('gate killed before the audit write');
      },
    };
    await expect(makeGate({ audit: lossy }).applyVerdict(verdict(a))).rejects.toThrow(/killed/);
    const app = await store.get('argocd', 'app');
    expect(app.spec?.source?.targetRevision).toBe(a);
    const id = app.metadata.annotations?.['gitops-gate.io/decision-id'];
    const out = await makeGate({ audit }).applyVerdict(verdict(a));
    expect(out[0]).toMatchObject({ action: 'pin' });
    expect(out[0]?.record?.id).toBe(id);
    expect(await audit.has(id!)).toBe(true);
    // A further retry is an ordinary skip-same.
    expect((await makeGate({ audit }).applyVerdict(verdict(a)))[0]?.action).toBe('skip-same');
  });

  it('default deny: no policy selects the Application → refused, not moved', async () => {
    const a = repo.commit('a');
    repo.push();
    const v = {
      ...verdict(a),
      policies: [{ name: 'other-apps', mode: 'Enforce' as const, selector: { names: ['somebody-else'] }, ok: true, code: 'VERIFIED' }],
    };
    const out = await makeGate().applyVerdict(v);
    expect(out[0]).toMatchObject({ action: 'refuse-no-policy' });
    expect(await rev()).toBe('main');
  });

  it('audit mode pins as before and records what enforce would have done', async () => {
    const a = repo.commit('a');
    repo.push();
    const v = {
      ...verdict(a, 'rejected'),
      policies: [{ name: 'rollout', mode: 'Audit' as const, selector: {}, ok: false, code: 'UNSIGNED', reason: 'commit is not signed' }],
    };
    const out = await makeGate().applyVerdict(v);
    expect(out[0]?.action).toBe('audit-pin');
    expect(out[0]?.reason).toMatch(/audit: policy rollout would refuse: UNSIGNED/);
    expect(await rev()).toBe(a);
    expect((await store.get('argocd', 'app')).metadata.annotations?.['gitops-gate.io/mode']).toBe('audit');
  });

  it('a verdict that predates the live policy generation is not applied; re-verification is requested', async () => {
    const a = repo.commit('a');
    repo.push();
    const asked: string[] = [];
    const gate = makeGate({
      livePolicies: () => [{ name: 'test', generation: 2, mode: 'Enforce', selector: {}, governs: () => true }],
      requestReverify: async (v, reason) => {
        asked.push(`${v.sha}:${reason}`);
      },
    });
    const v = {
      ...verdict(a),
      policies: [{ name: 'test', generation: 1, mode: 'Enforce' as const, selector: {}, ok: true, code: 'VERIFIED' }],
    };
    const out = await gate.applyVerdict(v);
    expect(out[0]?.action).toBe('deferred-stale-policy');
    expect(asked).toHaveLength(1);
    expect(await rev()).toBe('main');
  });

  describe("deferred verdicts (transient trouble outlasted the verifier's retries)", () => {
    const live: LivePolicy[] = [{ name: 'test', namespace: 'argocd', mode: 'Enforce', selector: {}, governs: () => true }];
    function deferred(sha: string, code: string, policies: PolicyResult[] = []): CommitVerdictJob {
      return { ...verdict(sha, 'rejected'), outcome: 'deferred', code, reasons: [`${code}: the cause`], signer: undefined, policies };
    }

    for (const [label, livePolicies] of [
      ['with the policy watch', () => live],
      ['with file policies only', undefined],
    ] as const) {
      it(`commit not found: one deferred-transient record naming GIT_COMMIT_NOT_FOUND, no re-verification (${label})`, async () => {
        const a = repo.commit('a');
        repo.push();
        const audit = createAuditTrail(redis, prefix);
        const asked: string[] = [];
        const gate = makeGate({
          audit,
          livePolicies,
          livePolicyRevision: livePolicies && (() => 'r1'),
          requestReverify: async (v) => void asked.push(v.sha),
        });
        const out = await gate.applyVerdict(deferred(a, 'GIT_COMMIT_NOT_FOUND'));
        // Before: deferred-stale-policy plus a second fetch (watch), or a final refuse-no-policy (files).
        expect(out.map((o) => o.action)).toEqual(['deferred-transient']);
        expect(out[0]?.reason).toMatch(/^GIT_COMMIT_NOT_FOUND: /);
        expect(asked).toEqual([]);
        expect((await audit.query({ sha: a })).map((r) => [r.action, r.verdict.outcome, r.verdict.code])).toEqual([
          ['deferred-transient', 'deferred', 'GIT_COMMIT_NOT_FOUND'],
        ]);
        // Not final: reconcile will queue this head again.
        expect(await audit.decidedApps(a)).toEqual(new Set());
        expect(await rev()).toBe('main');
      });
    }

    it('Rekor unavailable for a policy selecting the Application: deferred, not refused; its other policies alone would pin', async () => {
      const a = repo.commit('a');
      repo.push();
      const pass: PolicyResult = {
        name: 'test',
        scope: 'Namespaced',
        namespace: 'argocd',
        mode: 'Enforce',
        selector: {},
        ok: true,
        code: 'VERIFIED',
      };
      const rekor: PolicyResult = {
        name: 'keyless',
        scope: 'Namespaced',
        namespace: 'argocd',
        mode: 'Enforce',
        selector: {},
        ok: false,
        code: 'REKOR_UNAVAILABLE',
        reason: 'Rekor is unreachable',
      };
      // Before: enforce-fail → refuse-unsigned, final.
      const out = await makeGate().applyVerdict(deferred(a, 'REKOR_UNAVAILABLE', [pass, rekor]));
      expect(out.map((o) => o.action)).toEqual(['deferred-transient']);
      expect(await rev()).toBe('main');
      // The unavailable result belongs to a policy that selects someone else: this Application's own results are final.
      const elsewhere = { ...rekor, selector: { names: ['somebody-else'] } };
      const pinned = await makeGate().applyVerdict(deferred(a, 'REKOR_UNAVAILABLE', [pass, elsewhere]));
      expect(pinned.map((o) => o.action)).toEqual(['pin']);
      expect(await rev()).toBe(a);
    });
  });

  describe('required images', () => {
    const IMAGE = 'ghcr.io/org/app';
    function imageVerdict(sourceCommit: string, ok = true, extra: Partial<ImageVerdictJob> = {}): ImageVerdictJob {
      return {
        v: 1,
        kind: 'image-verdict',
        deliveryId: randomUUID(),
        repoUrl: 'https://github.com/org/app',
        image: IMAGE,
        digest: `sha256:${createHash('sha256').update(randomUUID()).digest('hex')}`,
        ok,
        code: ok ? 'VERIFIED' : 'BUILDER_NOT_TRUSTED',
        reason: ok ? undefined : 'built by an untrusted workflow',
        sourceCommit,
        builder: 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main',
        verifiedAt: new Date().toISOString(),
        policies: [
          {
            name: 'test',
            scope: 'Namespaced',
            namespace: 'argocd',
            mode: 'Enforce',
            selector: {},
            ok,
            code: ok ? 'VERIFIED' : 'BUILDER_NOT_TRUSTED',
            reason: ok ? undefined : 'built by an untrusted workflow',
          },
        ],
        ...extra,
      };
    }
    async function requireImages(): Promise<void> {
      const app = await store.get('argocd', 'app');
      await store.patch('argocd', 'app', {
        metadata: { resourceVersion: app.metadata.resourceVersion, annotations: { 'gitops-gate.io/require-images': IMAGE } },
      });
    }
    const gateWithImages = () => makeGate({ images: createImageState(redis, prefix) });

    it('commit first, image later: waits, then the image verdict triggers the pin, once', async () => {
      await requireImages();
      const gate = gateWithImages();
      const a = repo.commit('a');
      repo.push();
      expect((await gate.applyVerdict(verdict(a)))[0]).toMatchObject({ action: 'wait-images' });
      expect(await rev()).toBe('main');
      const out = await gate.applyImageVerdict(imageVerdict(a));
      expect(out[0]?.action).toBe('pin');
      expect(await rev()).toBe(a);
      expect((await store.get('argocd', 'app')).metadata.annotations?.['gitops-gate.io/images']).toMatch(/^ghcr\.io\/org\/app@sha256:/);
      // The commit no longer waits: a redelivered image verdict decides nothing again.
      expect(await gate.applyImageVerdict(imageVerdict(a))).toEqual([]);
      expect(await rev()).toBe(a);
    });

    it('image first, commit later: the commit verdict completes the set', async () => {
      await requireImages();
      const gate = gateWithImages();
      const a = repo.commit('a');
      repo.push();
      expect(await gate.applyImageVerdict(imageVerdict(a))).toEqual([]);
      expect((await gate.applyVerdict(verdict(a)))[0]?.action).toBe('pin');
      expect(await rev()).toBe(a);
    });

    it('a deferred image verdict (registry 5xx outlasted the retries) is recorded as deferred-image and revokes nothing', async () => {
      await requireImages();
      const audit = createAuditTrail(redis, prefix);
      const gate = makeGate({ images: createImageState(redis, prefix), audit });
      const a = repo.commit('a');
      repo.push();
      const pass = imageVerdict(a);
      await gate.applyImageVerdict(pass);
      const later = {
        ...imageVerdict(a, false),
        digest: pass.digest,
        deferred: true,
        code: 'REGISTRY_UNAVAILABLE',
        reason: 'registry answered HTTP 503',
        policies: [],
      };
      expect(await gate.applyImageVerdict(later)).toEqual([]);
      // Before: recorded as image-rejected, a final rejection of a digest nobody could read.
      expect((await audit.query({ app: `image:${IMAGE}` })).map((r) => r.action)).toEqual(['deferred-image', 'image-verified']);
      expect((await gate.applyVerdict(verdict(a)))[0]?.action).toBe('pin');
    });

    it('an image built from another commit does not count', async () => {
      await requireImages();
      const gate = gateWithImages();
      const a = repo.commit('a');
      const b = repo.commit('b');
      repo.push();
      await gate.applyImageVerdict(imageVerdict(a));
      const out = await gate.applyVerdict(verdict(b));
      expect(out[0]).toMatchObject({ action: 'wait-images' });
      expect(out[0]?.reason).toMatch(/no verified build from/);
      expect(await rev()).toBe('main');
    });

    it('an image built by an untrusted workflow blocks the pin, with the reason', async () => {
      await requireImages();
      const gate = gateWithImages();
      const a = repo.commit('a');
      repo.push();
      await gate.applyImageVerdict(imageVerdict(a, false));
      const out = await gate.applyVerdict(verdict(a));
      expect(out[0]?.action).toBe('wait-images');
      expect(out[0]?.reason).toMatch(/rejected: BUILDER_NOT_TRUSTED/);
      expect(await rev()).toBe('main');
    });

    it('both arriving at once on two gates: pinned exactly once', async () => {
      await requireImages();
      const a = repo.commit('a');
      repo.push();
      const [g1, g2] = [gateWithImages(), gateWithImages()];
      const results = await Promise.all([g1.applyVerdict(verdict(a)), g2.applyImageVerdict(imageVerdict(a))]);
      expect(await rev()).toBe(a);
      const pins = results.flat().filter((r) => r.action === 'pin');
      expect(pins).toHaveLength(1);
    });

    describe('judged by the live Enforce policies of the Application, for its repository (attacker cases)', () => {
      type P = Omit<PolicyResult, 'ok' | 'code'>;
      const STRICT: P = {
        name: 'argocd/strict',
        scope: 'Namespaced',
        namespace: 'argocd',
        uid: 'u-strict',
        generation: 1,
        mode: 'Enforce',
        selector: {},
      };
      // A dev policy: any workflow may build, no provenance; it selects the same Application but only audits.
      const LAX: P = {
        name: 'argocd/dev-lax',
        scope: 'Namespaced',
        namespace: 'argocd',
        uid: 'u-lax',
        generation: 1,
        mode: 'Audit',
        selector: {},
      };
      const pass = (p: P): PolicyResult => ({ ...p, ok: true, code: 'VERIFIED' });
      const fail = (p: P, code = 'BUILDER_NOT_TRUSTED'): PolicyResult => ({
        ...p,
        ok: false,
        code,
        reason: 'built by an untrusted workflow',
      });
      const commitUnder = (sha: string, ...policies: PolicyResult[]): CommitVerdictJob => ({
        ...verdict(sha),
        rule: policies[0]?.name,
        policies,
      });
      const live = (...ps: P[]): LivePolicy[] => ps.map((p) => ({ ...p, governs: () => true }));
      const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

      it('an Audit policy passing a lax build never supplies the rule when an Enforce policy selects the Application', async () => {
        await requireImages();
        const gate = makeGate({ images: createImageState(redis, prefix), livePolicies: () => live(STRICT, LAX) });
        const a = repo.commit('a');
        repo.push();
        // The verifier found the lax rule first: the verdict's overall ok came from it.
        await gate.applyImageVerdict(imageVerdict(a, true, { policy: LAX.name, policies: [pass(LAX), fail(STRICT)] }));
        const out = await gate.applyVerdict(commitUnder(a, pass(STRICT), pass(LAX)));
        expect(out[0]?.action).toBe('wait-images');
        expect(out[0]?.reason).toMatch(/rejected: BUILDER_NOT_TRUSTED.*policy argocd\/strict/);
        expect(await rev()).toBe('main');
      });

      it('an image verdict computed for another repository (org/playground) never counts for org/app', async () => {
        await requireImages();
        const reverify: string[] = [];
        const gate = makeGate({
          images: createImageState(redis, prefix),
          livePolicies: () => live(STRICT),
          requestImageReverify: async (b) => void reverify.push(b.digest),
        });
        const a = repo.commit('a');
        repo.push();
        await gate.applyImageVerdict(imageVerdict(a, true, { repoUrl: 'https://github.com/org/playground', policies: [pass(STRICT)] }));
        const out = await gate.applyVerdict(commitUnder(a, pass(STRICT)));
        expect(out[0]).toMatchObject({ action: 'wait-images' });
        expect(out[0]?.reason).toMatch(/no verified build from/);
        expect(reverify).toEqual([]);
        expect(await rev()).toBe('main');
        // The same build verified for org/app counts.
        expect((await gate.applyImageVerdict(imageVerdict(a, true, { policies: [pass(STRICT)] })))[0]?.action).toBe('pin');
      });

      it('an image verdict from an older policy generation does not count: the image is verified again, then pinned', async () => {
        await requireImages();
        const reverify: { digest: string; repoUrl: string }[] = [];
        const gen2 = { ...STRICT, generation: 2 };
        const gate = makeGate({
          images: createImageState(redis, prefix),
          livePolicies: () => live(gen2),
          requestImageReverify: async (b) => void reverify.push(b),
        });
        const a = repo.commit('a');
        repo.push();
        const digest = digestOf('gen');
        await gate.applyImageVerdict(imageVerdict(a, true, { digest, policies: [pass(STRICT)] }));
        // The commit was verified again under generation 2 (deferred-stale-policy); its image was not.
        const out = await gate.applyVerdict(commitUnder(a, pass(gen2)));
        expect(out[0]?.action).toBe('wait-images');
        expect(out[0]?.reason).toMatch(/not verified under policy argocd\/strict@2: verifying again/);
        expect(reverify).toEqual([{ image: IMAGE, digest, repoUrl: 'https://github.com/org/app' }]);
        expect(await rev()).toBe('main');
        expect((await gate.applyImageVerdict(imageVerdict(a, true, { digest, policies: [pass(gen2)] })))[0]?.action).toBe('pin');
        expect(await rev()).toBe(a);
      });

      it('a later rejection of the same digest under the same policy revokes the earlier pass, even without a source commit', async () => {
        await requireImages();
        const gate = makeGate({ images: createImageState(redis, prefix), livePolicies: () => live(STRICT) });
        const a = repo.commit('a');
        repo.push();
        const digest = digestOf('revoked');
        const t0 = Date.now();
        const at = (ms: number) => new Date(t0 + ms).toISOString();
        await gate.applyImageVerdict(imageVerdict(a, true, { digest, policies: [pass(STRICT)], verifiedAt: at(0) }));
        await gate.applyImageVerdict(
          imageVerdict(a, false, {
            digest,
            sourceCommit: undefined,
            code: 'SIGNATURE_UNVERIFIED',
            policies: [fail(STRICT, 'SIGNATURE_UNVERIFIED')],
            verifiedAt: at(1000),
          }),
        );
        // A pass from a verification that finished before the rejection (a slow replica) does not bring it back.
        await gate.applyImageVerdict(imageVerdict(a, true, { digest, policies: [pass(STRICT)], verifiedAt: at(500) }));
        const out = await gate.applyVerdict(commitUnder(a, pass(STRICT)));
        expect(out[0]?.action).toBe('wait-images');
        expect(out[0]?.reason).toMatch(/rejected: SIGNATURE_UNVERIFIED/);
        expect(await rev()).toBe('main');
      });

      it('a commit waiting for images whose policy was deleted is not pinned when the image arrives', async () => {
        await requireImages();
        let policies = live(STRICT);
        const gate = makeGate({ images: createImageState(redis, prefix), livePolicies: () => policies });
        const a = repo.commit('a');
        repo.push();
        expect((await gate.applyVerdict(commitUnder(a, pass(STRICT))))[0]?.action).toBe('wait-images');
        policies = [];
        const out = await gate.applyImageVerdict(imageVerdict(a, true, { policies: [pass(STRICT)] }));
        expect(out.map((o) => o.action)).not.toContain('pin');
        expect(await rev()).toBe('main');
        // Nor when the policy watch re-decides the waiting commit.
        expect((await gate.reevaluatePending()).map((o) => o.action)).not.toContain('pin');
        expect(await rev()).toBe('main');
      });

      it('policy change: waiting commits are decided again (a changed policy asks for the commit to be verified again)', async () => {
        await requireImages();
        let policies = live(STRICT);
        const asked: string[] = [];
        const images = createImageState(redis, prefix);
        const gate = makeGate({
          images,
          livePolicies: () => policies,
          livePolicyRevision: () => 'r2',
          requestReverify: async (v) => void asked.push(v.sha),
        });
        const a = repo.commit('a');
        repo.push();
        const first = commitUnder(a, pass(STRICT));
        await gate.applyVerdict(first);
        expect(await images.pendingShas()).toEqual([a]);
        policies = live({ ...STRICT, generation: 2 });
        const out = await gate.reevaluatePending();
        expect(out.map((o) => o.action)).toEqual(['deferred-stale-policy']);
        expect(asked).toEqual([a]);
        // The commit's re-verification under generation 2 and a build verified under it pin; nothing waits any more.
        await gate.applyImageVerdict(imageVerdict(a, true, { policies: [pass({ ...STRICT, generation: 2 })] }));
        expect((await gate.applyVerdict({ ...first, policies: [pass({ ...STRICT, generation: 2 })], reverify: 'r2' }))[0]?.action).toBe(
          'pin',
        );
        expect(await images.pendingShas()).toEqual([]);
      });

      it('one build must pass every Enforce policy: two builds each passing one policy are not enough', async () => {
        await requireImages();
        const OTHER: P = { ...STRICT, name: 'platform', scope: 'Cluster', namespace: undefined, uid: 'u-platform' };
        const gate = makeGate({ images: createImageState(redis, prefix), livePolicies: () => live(STRICT, OTHER) });
        const a = repo.commit('a');
        repo.push();
        await gate.applyImageVerdict(imageVerdict(a, true, { digest: digestOf('one'), policies: [pass(STRICT), fail(OTHER)] }));
        await gate.applyImageVerdict(imageVerdict(a, true, { digest: digestOf('two'), policies: [fail(STRICT), pass(OTHER)] }));
        expect((await gate.applyVerdict(commitUnder(a, pass(STRICT), pass(OTHER))))[0]?.action).toBe('wait-images');
        expect(await rev()).toBe('main');
      });

      it('Audit-only Applications pin and record what the images would have done', async () => {
        await requireImages();
        const gate = makeGate({ images: createImageState(redis, prefix), livePolicies: () => live(LAX) });
        const a = repo.commit('a');
        repo.push();
        await gate.applyImageVerdict(imageVerdict(a, false, { policies: [fail(LAX)] }));
        const out = await gate.applyVerdict(commitUnder(a, pass(LAX)));
        expect(out[0]?.action).toBe('audit-pin');
        expect(out[0]?.reason).toMatch(/audit: images would block: .*BUILDER_NOT_TRUSTED/);
        expect(await rev()).toBe(a);
      });
    });
  });
});

describe("the commit must be on the branch (issue #10.1): the gate pins nothing without the verifier's proof", () => {
  it('a verified commit the branch does not contain is refused, the record naming both SHAs', async () => {
    const gate = makeGate();
    const head = repo.commit('main head');
    repo.push();
    const feature = repo.commit('feature only');
    const [o] = await gate.applyVerdict({ ...verdict(feature), onBranch: false, branchHead: head });
    expect(o).toMatchObject({ app: 'argocd/app', action: 'refuse-not-on-branch' });
    expect(o?.record?.reason).toContain(feature);
    expect(o?.record?.reason).toContain(head);
    expect(await rev()).toBe('main');
  });
  it('a deleted branch, and a verdict without proof (an older verifier, a forged job), are refused too', async () => {
    const gate = makeGate();
    const sha = repo.commit('x');
    repo.push();
    const [deleted] = await gate.applyVerdict({ ...verdict(sha), onBranch: false, branchHead: null });
    expect(deleted).toMatchObject({ action: 'refuse-not-on-branch' });
    expect(deleted?.reason).toContain('does not exist');
    const { onBranch: _o, branchHead: _h, ...noProof } = verdict(sha);
    const [none] = await gate.applyVerdict(noProof);
    expect(none).toMatchObject({ action: 'refuse-not-on-branch' });
    expect(none?.reason).toContain('no proof');
    expect(await rev()).toBe('main');
  });
  it('Audit mode pins unverified commits, but never one off the branch', async () => {
    const gate = makeGate();
    const sha = repo.commit('audit');
    repo.push();
    const v = {
      ...verdict(sha, 'rejected'),
      onBranch: false,
      branchHead: 'c'.repeat(40),
      policies: [{ name: 'rollout', scope: 'File' as const, mode: 'Audit' as const, selector: {}, ok: false, code: 'UNSIGNED' }],
    };
    const [o] = await gate.applyVerdict(v);
    expect(o).toMatchObject({ action: 'refuse-not-on-branch' });
    expect(await rev()).toBe('main');
  });
});
