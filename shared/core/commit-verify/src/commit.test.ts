import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectMethod, parseCommit } from './commit.js';

const FIXTURES = new URL('../../../../../shared/fixtures/git-commits/', import.meta.url).pathname;

function allFixtureCommits(): { kind: string; sha: string; raw: Buffer }[] {
  const out: { kind: string; sha: string; raw: Buffer }[] = [];
  for (const kind of readdirSync(FIXTURES, { withFileTypes: true })) {
    if (!kind.isDirectory()) continue;
    for (const f of readdirSync(join(FIXTURES, kind.name))) {
      if (f.endsWith('.commit')) out.push({ kind: kind.name, sha: f.slice(0, -7), raw: readFileSync(join(FIXTURES, kind.name, f)) });
    }
  }
  return out;
}

describe('parseCommit', () => {
  const commits = allFixtureCommits();
  it('finds fixture commits', () => {
    expect(commits.length).toBeGreaterThan(20);
  });
  it('keeps the object bytes intact: the fixture sha is sha1 of the raw object', () => {
    for (const c of commits) {
      const sha = createHash('sha1').update(`commit ${c.raw.length}\0`).update(c.raw).digest('hex');
      expect(sha).toBe(c.sha);
    }
  });
  it('splits signature from payload, detects the method by armor', () => {
    for (const c of commits) {
      const p = parseCommit(c.raw);
      if (c.kind === 'unsigned') {
        expect(p.signature).toBeNull();
        expect(p.payload.equals(c.raw)).toBe(true);
        continue;
      }
      expect(p.signature).not.toBeNull();
      const expected = c.kind.startsWith('gitsign') ? 'gitsign' : c.kind === 'pgp' ? 'gpg' : 'ssh';
      expect(detectMethod(p.signature!)).toBe(expected);
      expect(p.payload.includes('gpgsig')).toBe(false);
      expect(p.payload.length).toBeLessThan(c.raw.length);
      expect(p.tree).toMatch(/^[0-9a-f]{40}$/);
    }
  });
  it('rejects malformed commits with a code', () => {
    expect(() => parseCommit(Buffer.from('garbage'))).toThrow(/blank line/);
    expect(() => parseCommit(Buffer.from('tree zz\n\nmsg'))).toThrow(/tree/);
  });
});
