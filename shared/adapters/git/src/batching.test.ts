import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestRepo } from '@gitops-gate/testing';
import { describe, expect, it } from 'vitest';
import { createBatchReader } from './batch-reader.js';
import { createGitMirror } from './index.js';
import { parseCommitNode } from './commit-graph.js';

const ghUrl = 'https://github.com/org/batch.git';

/** A mirror whose git processes are counted by subcommand. */
function counted(repoUrl: string) {
  const spawned: string[] = [];
  const mirror = createGitMirror({
    cacheDir: mkdtempSync(join(tmpdir(), 'gg-batch-')),
    urlRewrites: { [ghUrl]: repoUrl },
    onSpawn: (args) => spawned.push(args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '-c') ?? '?'),
  });
  return { mirror, spawned, count: (sub: string) => spawned.filter((s) => s === sub).length };
}

describe('batched git work per mirror', () => {
  it('one fetch for every SHA queued at that moment', async () => {
    const repo = createTestRepo();
    repo.commit('base');
    repo.push();
    const { mirror, count } = counted(repo.url);
    await mirror.readCommit(ghUrl, repo.head());
    expect(count('fetch')).toBe(1);
    // Six commits land; their jobs ask at once.
    const shas: string[] = [];
    for (let i = 0; i < 6; i++) shas.push(repo.commit(`c${i}`));
    repo.push('main');
    const raws = await Promise.all(shas.map((s) => mirror.readCommit(ghUrl, s)));
    expect(raws.map((r, i) => r.toString().includes(`c${i}`))).toEqual(shas.map(() => true));
    // The first request's fetch starts at once; all the others arrive while it runs and share the next one.
    expect(count('fetch')).toBeLessThanOrEqual(3);
  }, 90_000);

  it('a SHA the remote does not have fails alone; the others of the batch are fetched', async () => {
    const repo = createTestRepo();
    const good = repo.commit('good');
    repo.push();
    const { mirror } = counted(repo.url);
    const [a, b] = await Promise.allSettled([mirror.readCommit(ghUrl, good), mirror.readCommit(ghUrl, 'd'.repeat(40))]);
    expect(a.status).toBe('fulfilled');
    expect(b.status === 'rejected' && (b.reason as { code?: string }).code).toBe('GIT_COMMIT_NOT_FOUND');
  });

  it('warm: reading, ancestry and recent history of commits in the mirror start no git process', async () => {
    const repo = createTestRepo();
    const shas = [repo.commit('one'), repo.commit('two'), repo.commit('three')];
    repo.push();
    const { mirror, spawned } = counted(repo.url);
    await mirror.ensureCommit(ghUrl, shas[2]!);
    const before = spawned.length;
    const fresh = counted(repo.url);
    // Another mirror object on the same cache would have to read from disk: use the warm one.
    expect((await mirror.readCommit(ghUrl, shas[0]!)).toString()).toContain('one');
    expect(await mirror.isAncestor(ghUrl, shas[0]!, shas[2]!)).toBe(true);
    expect(await mirror.isAncestor(ghUrl, shas[2]!, shas[0]!)).toBe(false);
    expect((await mirror.recentAncestors(ghUrl, shas[2]!, 10)).slice(0, 3)).toEqual([...shas].reverse());
    expect(spawned.slice(before)).toEqual([]);
    expect(fresh.spawned).toEqual([]);
  });

  it('ancestry answered from the commit graph agrees with git on merges', async () => {
    const repo = createTestRepo();
    const base = repo.commit('base');
    repo.push();
    const side = repo.commit('side');
    repo.push('side');
    const { mirror } = counted(repo.url);
    expect(await mirror.isAncestor(ghUrl, base, side)).toBe(true);
    expect(await mirror.isAncestor(ghUrl, side, base)).toBe(false);
    expect(await mirror.isAncestor(ghUrl, side, side)).toBe(true);
  });

  it('jobs for one branch share a read of it that started after they arrived, never an older one', async () => {
    const repo = createTestRepo();
    const first = repo.commit('first');
    repo.push();
    const { mirror, count } = counted(repo.url);
    const arrived = Date.now();
    const proofs = await Promise.all(Array.from({ length: 8 }, () => mirror.proveOnBranch(ghUrl, first, 'main', { freshSince: arrived })));
    expect(proofs.every((p) => p.onBranch && p.head === first)).toBe(true);
    const branchFetches = count('fetch');
    expect(branchFetches).toBeLessThanOrEqual(2);
    // A force-push removes the commit; a job that arrives afterwards must see it, not the shared older read.
    repo.commit('rewritten');
    repo.push('main', true);
    await new Promise((r) => setTimeout(r, 5));
    const later = await mirror.proveOnBranch(ghUrl, first, 'main', { freshSince: Date.now() });
    expect(later.head).toBe(repo.head());
    expect(count('fetch')).toBeGreaterThan(branchFetches);
  });
});

describe('commit graph parsing', () => {
  it('reads parents and committer time from the header only (a "parent" line in the message is ignored)', () => {
    const p1 = 'a'.repeat(40);
    const raw = Buffer.from(
      `tree ${'b'.repeat(40)}\nparent ${p1}\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1700000000 +0100\n\nparent ${'c'.repeat(40)}\n`,
    );
    expect(parseCommitNode(raw)).toEqual({ parents: [p1], time: 1700000000 });
  });
});

describe('cat-file --batch reader limits', () => {
  it('refuses reads beyond its bound instead of queueing without limit', async () => {
    const repo = createTestRepo();
    const sha = repo.commit('x');
    repo.push();
    const reader = createBatchReader(repo.bareDir, { PATH: process.env.PATH }, { maxPending: 2 });
    const reads = [reader.read(sha), reader.read(sha), reader.read(sha)];
    const settled = await Promise.allSettled(reads);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    reader.close();
  });
  it('a read not answered in time kills the process; the next read starts a new one', async () => {
    const repo = createTestRepo();
    const sha = repo.commit('x');
    repo.push();
    let spawns = 0;
    // A `git` that never answers (first on PATH): the timer always wins, however loaded the machine; each read
    // after a kill starts a new process.
    const stuck = mkdtempSync(join(tmpdir(), 'gg-stuck-git-'));
    writeFileSync(join(stuck, 'git'), '#!/bin/sh\nexec sleep 30\n');
    chmodSync(join(stuck, 'git'), 0o755);
    const reader = createBatchReader(repo.bareDir, { PATH: `${stuck}:${process.env.PATH}` }, { timeoutMs: 50, onSpawn: () => spawns++ });
    await expect(reader.read(sha)).rejects.toThrow(/did not answer/);
    await expect(reader.read(sha)).rejects.toThrow(/did not answer/);
    expect(spawns).toBe(2);
    const again = createBatchReader(repo.bareDir, { PATH: process.env.PATH });
    expect((await again.read(sha))?.type).toBe('commit');
    reader.close();
    again.close();
  });
});
