import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestRepo } from '@gitops-gate/testing';
import { describe, expect, it } from 'vitest';
import { createGitMirror, GitError, rewriteUrl } from './index.js';

describe('rewriteUrl', () => {
  it('uses the longest matching prefix, like insteadOf', () => {
    const r = { 'https://github.com/': 'file:///m/', 'https://github.com/org/': 'file:///org/' };
    expect(rewriteUrl('https://github.com/org/app.git', r)).toBe('file:///org/app.git');
    expect(rewriteUrl('https://github.com/x/y', r)).toBe('file:///m/x/y');
    expect(rewriteUrl('https://gitlab.com/x/y', r)).toBe('https://gitlab.com/x/y');
  });
});

describe('createGitMirror (real git)', () => {
  const repo = createTestRepo();
  const first = repo.commit('one');
  const second = repo.commit('two');
  repo.push();
  const cacheDir = mkdtempSync(join(tmpdir(), 'gg-cache-'));
  // The webhook names github.com; the rewrite points it at the local bare repository.
  const ghUrl = 'https://github.com/org/app.git';
  const mirror = createGitMirror({ cacheDir, urlRewrites: { [ghUrl]: repo.url } });

  it('fetches by sha and reads the raw commit bytes', async () => {
    const raw = await mirror.readCommit(ghUrl, second);
    expect(raw.toString('utf8')).toContain(`parent ${first}`);
    expect(raw.toString('utf8')).toContain('two');
  });
  it('answers ancestry both ways', async () => {
    expect(await mirror.isAncestor(ghUrl, first, second)).toBe(true);
    expect(await mirror.isAncestor(ghUrl, second, first)).toBe(false);
  });
  it('remembers immutable facts: a known commit and an ancestry answer need no git process', async () => {
    const m = createGitMirror({ cacheDir: mkdtempSync(join(tmpdir(), 'gg-memo-')), urlRewrites: { [ghUrl]: repo.url } });
    expect(await m.isAncestor(ghUrl, first, second)).toBe(true);
    const dir = await m.ensureCommit(ghUrl, second);
    // With the mirror gone, only remembered answers can come back.
    rmSync(dir, { recursive: true, force: true });
    expect(await m.isAncestor(ghUrl, first, second)).toBe(true);
    expect(await m.ensureCommit(ghUrl, first)).toBe(dir);
  });

  it('sees commits pushed after the mirror was made', async () => {
    const third = repo.commit('three');
    repo.push();
    expect((await mirror.readCommit(ghUrl, third)).toString()).toContain('three');
  });
  it('lists recent ancestors, newest first, bounded', async () => {
    const list = await mirror.recentAncestors(ghUrl, second, 10);
    expect(list.slice(0, 2)).toEqual([second, first]);
    expect(await mirror.recentAncestors(ghUrl, second, 1)).toEqual([second]);
  });

  it('lists heads', async () => {
    const heads = await mirror.listHeads(ghUrl);
    expect(heads.get('main')).toBe(repo.head());
  });
  it('a missing commit is a permanent error', async () => {
    const err = await mirror.readCommit(ghUrl, 'b'.repeat(40)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).code).toBe('GIT_COMMIT_NOT_FOUND');
    expect((err as GitError).transient).toBe(false);
  });
  it('an unreachable repository is transient', async () => {
    const m = createGitMirror({ cacheDir, urlRewrites: {} });
    const err = await m.readCommit('file:///nonexistent/repo.git', 'c'.repeat(40)).catch((e: unknown) => e);
    expect((err as GitError).transient).toBe(true);
  });
  it('rejects non-sha input before running git', async () => {
    await expect(mirror.readCommit(ghUrl, 'main')).rejects.toMatchObject({ code: 'GIT_BAD_SHA' });
    await expect(mirror.readCommit(ghUrl, '--upload-pack=evil')).rejects.toMatchObject({ code: 'GIT_BAD_SHA' });
  });
  it('serialises concurrent fetches of one mirror', async () => {
    const shas = [repo.commit('c1'), repo.commit('c2')];
    repo.push();
    const raws = await Promise.all([...shas, ...shas].map((s) => mirror.readCommit(ghUrl, s)));
    expect(raws).toHaveLength(4);
  });
});
