/**
 * The followed-repository set: computed from opted-in Applications only (never a payload), host-scoped, and the one
 * list reconcile contacts.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisConnection, createFollowedRepoReader, publishFollowedRepos } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createAuditTrail, createReconcileMarks } from '@gitops-gate/gate-store';
import type { Application } from './applications.js';
import { collectFollowedRepos } from './followed-repos.js';
import { createReconciler } from './reconcile.js';

const silent = createLogger('followed-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const opts = { credentialHosts: ['github.com'], otherHosts: 'refuse' as const };

function app(name: string, repoURL: string | string[], branch?: string): Application {
  const sources = Array.isArray(repoURL) ? repoURL.map((r) => ({ repoURL: r, targetRevision: 'main' })) : undefined;
  return {
    metadata: { name, namespace: 'argocd', resourceVersion: '1', annotations: branch ? { 'gitops-gate.io/branch': branch } : {} },
    spec: sources ? { sources } : { source: { repoURL: repoURL as string, targetRevision: 'main' } },
  };
}

describe('collectFollowedRepos', () => {
  it('one entry per normalised repository, from opted-in Applications only, fetched over https', () => {
    const repos = collectFollowedRepos(
      [
        app('a', 'git@github.com:Org/App.git', 'main'),
        app('b', 'https://github.com/org/app', 'release'),
        app('c', 'https://github.com/org/not-opted-in.git'),
        app('d', ['https://charts.example.com/x', 'ssh://git@github.com/org/ssh-only.git'], 'main'),
      ],
      { ...opts, otherHosts: 'anonymous' },
    );
    expect(repos).toEqual([
      { repoUrl: 'https://charts.example.com/x', fetchUrl: 'https://charts.example.com/x.git', branches: ['main'] },
      { repoUrl: 'https://github.com/org/app', fetchUrl: 'https://github.com/org/app.git', branches: ['main', 'release'] },
      // No https spelling: the verifier's token is for https, so the https form of the repository is fetched.
      { repoUrl: 'https://github.com/org/ssh-only', fetchUrl: 'https://github.com/org/ssh-only.git', branches: ['main'] },
    ]);
  });
  it('an Application on a host outside the credential hosts is refused by default (an Application editor picks no server)', () => {
    const [evil, ok] = collectFollowedRepos(
      [app('e', 'http://127.0.0.1:9/steal.git', 'main'), app('f', 'https://github.com/org/app.git', 'main')],
      opts,
    );
    expect(evil).toMatchObject({ repoUrl: 'https://127.0.0.1:9/steal', refused: expect.stringContaining('127.0.0.1:9') });
    expect(ok?.refused).toBeUndefined();
    expect(collectFollowedRepos([app('g', 'file:///etc/repo.git', 'main')], opts)[0]?.refused).toBeDefined();
  });
  it("the fetch URL is rebuilt from the parsed host and path: an editor's userinfo, fragment or query cannot steer git", () => {
    const [r] = collectFollowedRepos([app('a', 'https://evil.example@github.com/org/app.git#@evil.example', 'main')], opts);
    expect(r).toMatchObject({ repoUrl: 'https://github.com/org/app', fetchUrl: 'https://github.com/org/app.git' });
    expect(collectFollowedRepos([app('h', 'http://git.internal/x/y', 'main')], { ...opts, otherHosts: 'anonymous' })[0]?.fetchUrl).toBe(
      'http://git.internal/x/y.git',
    );
  });
  it('a URL-prefix entry allows only repositories under that prefix, not its whole host', () => {
    const scoped = { credentialHosts: ['http://127.0.0.1:9/trusted/'], otherHosts: 'refuse' as const };
    const [other, trusted] = collectFollowedRepos(
      [app('t', 'http://127.0.0.1:9/trusted/repo.git', 'main'), app('o', 'http://127.0.0.1:9/appurl/repo.git', 'main')],
      scoped,
    );
    expect(other?.refused).toBeDefined();
    expect(trusted?.refused).toBeUndefined();
  });
});

describe('published set and reconcile (real Redis)', () => {
  let server: TestRedis;
  let redis: Redis;
  beforeAll(async () => {
    server = await startTestRedis();
    redis = createRedisConnection(server.url, 'worker');
  });
  afterAll(async () => {
    redis.disconnect();
    await server.close();
  });

  it('the reader answers followed / not followed / not published, in any URL spelling', async () => {
    const prefix = `f-${randomUUID().slice(0, 8)}`;
    const reader = createFollowedRepoReader(redis, prefix, { cacheMs: 0 });
    expect(await reader.lookup('https://github.com/org/app')).toBeUndefined();
    await publishFollowedRepos(redis, prefix, collectFollowedRepos([app('a', 'https://github.com/org/app.git', 'main')], opts));
    expect(await reader.lookup('git@github.com:ORG/app.git')).toMatchObject({ fetchUrl: 'https://github.com/org/app.git' });
    expect(await reader.lookup('https://github.com/attacker/app')).toBeNull();
    // Garbage in the key (a Redis writer, a bug) is "not published": wait, never "follow everything".
    await redis.set(`${prefix}:followed-repos`, '{not json');
    expect(await reader.lookup('https://github.com/org/app')).toBeUndefined();
  });

  it('reconcile lists heads only of followed, allowed repositories, from their followed URL', async () => {
    const prefix = `r-${randomUUID().slice(0, 8)}`;
    const apps = [
      app('a', 'git@github.com:org/app.git', 'main'),
      app('b', 'https://github.com/org/app.git', 'main'),
      app('evil', 'http://127.0.0.1:9/steal.git', 'main'),
    ];
    const contacted: string[] = [];
    const reconciler = createReconciler({
      store: { list: async () => apps, get: async () => apps[0]!, patch: async () => apps[0]! },
      namespaces: [],
      listHeads: async (url) => {
        contacted.push(url);
        return new Map([['main', 'a'.repeat(40)]]);
      },
      audit: createAuditTrail(redis, prefix),
      enqueue: async () => undefined,
      marks: createReconcileMarks(redis, prefix),
      logger: silent,
      followed: (list) => collectFollowedRepos(list, opts),
    });
    const queued = await reconciler.runOnce();
    expect(contacted).toEqual(['https://github.com/org/app.git']);
    expect(queued).toMatchObject([
      { repoUrl: 'https://github.com/org/app', cloneUrl: 'https://github.com/org/app.git', branch: 'main', sha: 'a'.repeat(40) },
    ]);
  });
});
