import { describe, expect, it } from 'vitest';
import { decide } from './decide.js';

// History: a ← b ← c, and x forked from a (a rewrite).
const parents: Record<string, string | undefined> = { a: undefined, b: 'a', c: 'b', x: 'a' };
const sha = (c: string) => c.repeat(40);
const isAncestor = async (anc: string, desc: string) => {
  for (let cur: string | undefined = desc[0]; cur; cur = parents[cur]) if (sha(cur) === anc) return true;
  return false;
};
const base = { verified: true, verdictReason: '', isAncestor };

describe('decide', () => {
  it('pins the first verified commit over a branch name', async () => {
    expect((await decide({ ...base, current: ['main'], sha: sha('b') })).action).toBe('pin');
  });
  it('moves forward to a descendant', async () => {
    expect((await decide({ ...base, current: [sha('a')], sha: sha('c') })).action).toBe('pin');
  });
  it('never moves backwards', async () => {
    const d = await decide({ ...base, current: [sha('c')], sha: sha('a') });
    expect(d.action).toBe('skip-older');
  });
  it('refuses a rewritten history', async () => {
    const d = await decide({ ...base, current: [sha('c')], sha: sha('x') });
    expect(d.action).toBe('refuse-rewrite');
    expect(d.reason).toMatch(/force push/);
  });
  it('skips the commit it is already on', async () => {
    expect((await decide({ ...base, current: [sha('c')], sha: sha('c') })).action).toBe('skip-same');
  });
  it('refuses unverified commits whatever the history', async () => {
    const d = await decide({ ...base, verified: false, verdictReason: 'UNSIGNED: commit is not signed', current: ['main'], sha: sha('b') });
    expect(d).toEqual({ action: 'refuse-unverified', reason: 'commit not verified: UNSIGNED: commit is not signed' });
  });
  it('fails closed when ancestry cannot be established', async () => {
    await expect(
      decide({
        ...base,
        current: [sha('a')],
        sha: sha('b'),
        isAncestor: async () => {
          throw new Error('git down');
        },
      }),
    ).rejects.toThrow('git down');
  });
});
