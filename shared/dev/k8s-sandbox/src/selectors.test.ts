import { describe, expect, it } from 'vitest';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { StatusError } from './status.js';

const sel = (s: string, labels: Record<string, string>) => matchesLabels(parseLabelSelector(s), labels);

describe('label selectors', () => {
  it('implements =, ==, !=, in, notin, exists, !exists, gt and lt', () => {
    expect(sel('a=1', { a: '1' })).toBe(true);
    expect(sel('a==1', { a: '2' })).toBe(false);
    expect(sel('a!=1', { a: '2' })).toBe(true);
    expect(sel('a!=1', {})).toBe(true);
    expect(sel('a in (1, 2)', { a: '2' })).toBe(true);
    expect(sel('a in (1,2)', {})).toBe(false);
    expect(sel('a notin (1,2)', { a: '3' })).toBe(true);
    expect(sel('a notin (1,2)', {})).toBe(true);
    expect(sel('a', { a: '' })).toBe(true);
    expect(sel('!a', { a: '' })).toBe(false);
    expect(sel('n>3', { n: '4' })).toBe(true);
    expect(sel('n<3', { n: '4' })).toBe(false);
    expect(sel('example.com/tier=web,env in (prod),!legacy', { 'example.com/tier': 'web', env: 'prod' })).toBe(true);
    expect(sel('', { anything: 'x' })).toBe(true);
  });

  it('rejects malformed selectors with a 400 Status', () => {
    for (const bad of ['a in (', '=x', 'a=b=c', 'bad key=1', 'a=-x-']) {
      expect(() => parseLabelSelector(bad), bad).toThrow(StatusError);
      try {
        parseLabelSelector(bad);
      } catch (err) {
        expect((err as StatusError).status.code).toBe(400);
      }
    }
  });
});

describe('field selectors', () => {
  const allowed = ['metadata.name', 'metadata.namespace'];
  it('matches = and != on the allowed fields', () => {
    const reqs = parseFieldSelector('metadata.name=a,metadata.namespace!=kube-system', allowed);
    expect(matchesFields(reqs, { 'metadata.name': 'a', 'metadata.namespace': 'argocd' })).toBe(true);
    expect(matchesFields(reqs, { 'metadata.name': 'a', 'metadata.namespace': 'kube-system' })).toBe(false);
    expect(matchesFields(parseFieldSelector('metadata.name==b', allowed), { 'metadata.name': 'b' })).toBe(true);
  });

  it('answers unknown fields like the apiserver does for custom resources', () => {
    try {
      parseFieldSelector('spec.x=1', allowed);
      expect.unreachable();
    } catch (err) {
      expect((err as StatusError).status).toMatchObject({ code: 400, reason: 'BadRequest' });
    }
  });
});
