import { describe, expect, it } from 'vitest';
import { globMatch, refNameMatches } from './glob.js';

/** The regular expression the policy package used before this matcher: the reference for ref-name globs. */
function refRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

describe('globMatch', () => {
  it('without a separator, * and ? match anything (OpenSSH patterns)', () => {
    expect(globMatch('*@example.com', 'alice@example.com')).toBe(true);
    expect(globMatch('a?ice@*', 'a/ice@x/y')).toBe(true);
    expect(globMatch('*', 'a/b/c')).toBe(true);
    expect(globMatch('*@example.com', 'alice@example.com.evil')).toBe(false);
    expect(globMatch('', 'a')).toBe(false);
  });

  it('with a separator, neither * nor ? crosses it (ref names)', () => {
    expect(refNameMatches('release/*', 'release/1.2')).toBe(true);
    expect(refNameMatches('release/*', 'release/1.2/evil')).toBe(false);
    expect(refNameMatches('*', 'feature/x')).toBe(false);
    expect(refNameMatches('v?.*', 'v/.0')).toBe(false);
    expect(refNameMatches('a*b*c', 'aXbY/c')).toBe(false);
    expect(refNameMatches('ma.n', 'main')).toBe(false);
  });

  it('ref-name matching agrees with the reference regular expression on every small case', () => {
    const patterns = ['*', '**', 'm*', '*n', 'm?in', 'release/*', 'release/*/x', '*/*', 'a*b*c', '?', 'a.b', 'v?.*', ''];
    const names = [
      'main',
      'mian',
      'release/1',
      'release/1/x',
      'release/',
      'a/b',
      'abc',
      'aXbYc',
      'a.b',
      'axb',
      'v1.0',
      'v/.0',
      '',
      '/',
      'm',
    ];
    for (const p of patterns) {
      for (const n of names) expect(refNameMatches(p, n), `${p} ~ ${n}`).toBe(refRegExp(p).test(n));
    }
  });

  it('answers patterns built to backtrack', () => {
    expect(globMatch('*a*a*a*a*a*c', `${'a'.repeat(5000)}b`)).toBe(false);
    expect(refNameMatches('*a*a*a*a*a*c', `${'a'.repeat(5000)}b`)).toBe(false);
  });
});
