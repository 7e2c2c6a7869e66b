import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createTestRepo } from '@gitops-gate/testing';
import { createBatchReader } from './batch-reader.js';

describe('git cat-file --batch reader', () => {
  const repo = createTestRepo();
  const a = repo.commit('a');
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, GIT_CONFIG_NOSYSTEM: '1' };

  it('reads commits in order, many at once, byte-identical to git cat-file', async () => {
    const b = repo.commit('b');
    const r = createBatchReader(repo.workDir, env);
    const objs = await Promise.all([a, b, a, b].map((s) => r.read(s)));
    expect(objs.map((o) => o?.type)).toEqual(['commit', 'commit', 'commit', 'commit']);
    expect(objs[1]?.data.equals(execFileSync('git', ['cat-file', 'commit', b], { cwd: repo.workDir }))).toBe(true);
    r.close();
  });

  it('answers null for a missing object, then finds it once it exists', async () => {
    const r = createBatchReader(repo.workDir, env);
    expect(await r.read('c'.repeat(40))).toBeNull();
    const c = repo.commit('c');
    expect((await r.read(c))?.type).toBe('commit');
    r.close();
  });

  it('a killed process fails pending reads and the next read starts a new one', async () => {
    const r = createBatchReader(repo.workDir, env);
    expect(await r.read(a)).not.toBeNull();
    r.close();
    expect((await r.read(a))?.type).toBe('commit');
    await expect(r.read('not-a-sha')).rejects.toThrow(/not a sha/);
    r.close();
  });
});
