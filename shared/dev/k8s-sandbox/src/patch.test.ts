import { describe, expect, it } from 'vitest';
import { jsonPatch, mergePatch, PatchError, type Json } from './patch.js';

describe('merge patch (RFC 7386)', () => {
  it('merges objects, deletes on null and replaces arrays and scalars', () => {
    const doc: Json = { a: { b: 1, c: [1, 2] }, d: 'x' };
    expect(mergePatch(doc, { a: { b: null, c: [3] }, e: true })).toEqual({ a: { c: [3] }, d: 'x', e: true });
    expect(doc).toEqual({ a: { b: 1, c: [1, 2] }, d: 'x' });
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc: Json = { metadata: { name: 'n', labels: { a: '1' } }, list: [1, 2, 3] };

  it('applies add, remove, replace, move, copy and test without touching the input', () => {
    const out = jsonPatch(doc, [
      { op: 'add', path: '/list/-', value: 4 },
      { op: 'add', path: '/list/0', value: 0 },
      { op: 'remove', path: '/list/1' },
      { op: 'replace', path: '/metadata/name', value: 'm' },
      { op: 'move', from: '/metadata/labels/a', path: '/metadata/labels/b' },
      { op: 'copy', from: '/metadata/name', path: '/metadata/labels/c' },
      { op: 'add', path: '/metadata/labels/x~1y', value: 'slash' },
      { op: 'test', path: '/metadata/labels', value: { b: '1', c: 'm', 'x/y': 'slash' } },
    ]);
    expect(out).toEqual({ metadata: { name: 'm', labels: { b: '1', c: 'm', 'x/y': 'slash' } }, list: [0, 2, 3, 4] });
    expect(doc).toEqual({ metadata: { name: 'n', labels: { a: '1' } }, list: [1, 2, 3] });
  });

  it('fails a test that does not match, and ops on missing paths', () => {
    const notApplied = (patch: unknown) => {
      try {
        jsonPatch(doc, patch);
      } catch (err) {
        return err instanceof PatchError ? err.code : 'other';
      }
      return 'applied';
    };
    expect(notApplied([{ op: 'test', path: '/metadata/name', value: 'other' }])).toBe('PATCH_NOT_APPLIED');
    expect(notApplied([{ op: 'replace', path: '/metadata/missing', value: 1 }])).toBe('PATCH_NOT_APPLIED');
    expect(notApplied([{ op: 'remove', path: '/list/9' }])).toBe('PATCH_NOT_APPLIED');
    expect(notApplied([{ op: 'add', path: '/no/such/parent', value: 1 }])).toBe('PATCH_NOT_APPLIED');
    expect(notApplied([{ op: 'frobnicate', path: '/x' }])).toBe('PATCH_NOT_APPLIED');
    expect(notApplied({ op: 'add' })).toBe('PATCH_MALFORMED');
    expect(notApplied([{ op: 'test', path: '/metadata/name', value: 'n' }])).toBe('applied');
    // An absent member equals null inside an existing object; under a missing parent the test fails.
    expect(notApplied([{ op: 'test', path: '/metadata/absent', value: null }])).toBe('applied');
    expect(notApplied([{ op: 'test', path: '/spec/source/targetRevision', value: null }])).toBe('PATCH_NOT_APPLIED');
    // The gate's precondition on resourceVersion: replace keeps the value it names, whatever the live one was.
    expect(jsonPatch({ metadata: { resourceVersion: '9' } }, [{ op: 'replace', path: '/metadata/resourceVersion', value: '7' }])).toEqual({
      metadata: { resourceVersion: '7' },
    });
  });
});
