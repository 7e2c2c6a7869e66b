import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FollowedRepo } from '@gitops-gate/contracts';
import type { Application } from '@gitops-gate/gate-core';
import { GitError } from '@gitops-gate/git';
import { createFollowedPublisher, followedAncestry } from './followed-publisher.js';
import { capturingLogger } from './test-logs.js';

const options = { credentialHosts: ['github.com'], otherHosts: 'refuse' as const };
const app = (name: string, repoURL: string, branch?: string): Application => ({
  metadata: { name, namespace: 'argocd', resourceVersion: '1', annotations: branch ? { 'gitops-gate.io/branch': branch } : {} },
  spec: { source: { repoURL, targetRevision: 'main' } },
});

function setup(apps: Application[], publishFails = false) {
  const published: FollowedRepo[][] = [];
  const { logger, lines } = capturingLogger();
  const list = vi.fn(() => Promise.resolve(apps));
  const p = createFollowedPublisher({
    list,
    publish: (repos) => (publishFails ? Promise.reject(new Error('redis down')) : (published.push(repos), Promise.resolve())),
    options,
    logger,
  });
  return { p, published, lines, list };
}

afterEach(() => vi.useRealTimers());

describe('createFollowedPublisher', () => {
  it('publishes the opted-in Applications repositories only, and knows them in every spelling', async () => {
    const { p, published } = setup([app('a', 'git@github.com:Org/App.git', 'main'), app('b', 'https://github.com/org/other')]);
    await p.refresh();
    expect(published[0]?.map((r) => r.repoUrl)).toEqual(['https://github.com/org/app']);
    expect(p.fetchable('https://github.com/ORG/app.git')?.fetchUrl).toBe('https://github.com/org/app.git');
    expect(p.fetchable('https://github.com/org/other')).toBeUndefined();
  });

  it('a repository on a host the credentials are not for is published refused and never fetchable', async () => {
    const { p, published } = setup([app('a', 'https://evil.example.com/org/app', 'main')]);
    await p.refresh();
    expect(published[0]?.[0]?.refused).toContain('is not under GIT_CREDENTIAL_HOSTS');
    expect(p.fetchable('https://evil.example.com/org/app')).toBeUndefined();
  });

  it('start publishes at once, then on every tick; a failed publish is logged and the timer keeps going; stop ends it', async () => {
    vi.useFakeTimers();
    const { p, lines, list } = setup([app('a', 'https://github.com/org/app', 'main')], true);
    await p.start(1_000);
    expect(list).toHaveBeenCalledTimes(1);
    expect(lines.filter((l) => l.msg === 'followed repositories not published')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(list).toHaveBeenCalledTimes(3);
    p.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(list).toHaveBeenCalledTimes(3);
  });
});

describe('followedAncestry (attacker: a verdict job naming a repository nobody follows)', () => {
  it('fetches the followed URL, never the spelling the job carries', async () => {
    const { p } = setup([app('a', 'https://github.com/org/app', 'main')]);
    await p.refresh();
    const fetch = vi.fn(() => Promise.resolve(true));
    await expect(followedAncestry(p, fetch)('https://user:pw@github.com/Org/App', 'a', 'b')).resolves.toBe(true);
    expect(fetch).toHaveBeenCalledWith('https://github.com/org/app.git', 'a', 'b');
  });

  it('an unfollowed or refused repository is rejected GIT_NOT_FOLLOWED without contacting it', async () => {
    const { p } = setup([app('a', 'https://evil.example.com/org/app', 'main')]);
    await p.refresh();
    const fetch = vi.fn(() => Promise.resolve(true));
    for (const url of ['https://github.com/attacker/repo', 'https://evil.example.com/org/app']) {
      const err: unknown = await followedAncestry(p, fetch)(url, 'a', 'b').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GitError);
      expect((err as GitError).code).toBe('GIT_NOT_FOLLOWED');
    }
    expect(fetch).not.toHaveBeenCalled();
  });
});
