import { describe, expect, it } from 'vitest';
import { decodeBase64, parseUint } from './encoding.js';

const ok = (s: string) => decodeBase64(s, 't').toString('hex');
const bad = (s: unknown) => {
  expect(() => decodeBase64(s, 't')).toThrow(/base64/);
};

describe('strict base64', () => {
  it('accepts standard and URL-safe alphabets, padded or not, and wrapped lines', () => {
    expect(ok('+/8=')).toBe('fbff');
    expect(ok('+/8')).toBe('fbff');
    expect(ok('-_8=')).toBe('fbff');
    expect(ok('-_8')).toBe('fbff');
    expect(ok('AAEC\nAwQF\r\n')).toBe('000102030405');
    expect(ok('')).toBe('');
  });
  it('refuses stray characters, mixed alphabets, bad padding and non-canonical trailing bits', () => {
    for (const s of ['AA!A', 'AA A', '+_8=', 'AAA==', 'A', 'AB==', 'AAB=', '=AAA', 'AA=A', '\u00e9AAA']) bad(s);
    for (const v of [null, 1, {}, []]) bad(v);
  });
});

describe('uint64 fields', () => {
  it('parses canonical decimal strings and safe integers only', () => {
    expect(parseUint('0', 'x')).toBe(0n);
    expect(parseUint('18446744073709551615', 'x')).toBe(18446744073709551615n);
    expect(parseUint(7, 'x')).toBe(7n);
    for (const v of ['-1', '01', '1e3', ' 1', '0x10', '', '1.0', -1, 1.5, 2 ** 60, null, '123456789012345678901']) {
      expect(() => parseUint(v, 'x'), String(v)).toThrow(/non-negative integer/);
    }
  });
});
