// Minimal DER reader that works on offsets into the original bytes. Nothing is re-encoded: signatures are checked
// over the exact bytes that were signed, and parsing a certificate costs a handful of array reads.
import { VerifyError } from './errors.js';

export interface DerNode {
  /** Identifier octet (single-byte tags only; high tag numbers are rejected). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly valueStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function fail(reason: string): never {
  throw new VerifyError('DER_INVALID', reason);
}

/** Reads one TLV starting at `offset`; it must end at or before `limit`. */
export function readNode(buf: Uint8Array, offset: number, limit: number = buf.length): DerNode {
  if (offset + 2 > limit) fail('truncated DER header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('high-tag-number form is not supported');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    // 0x80 is the BER indefinite form, which DER forbids; more than 4 length octets cannot describe our inputs.
    if (n === 0 || n > 4) fail('unsupported DER length form');
    if (pos + n > limit) fail('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++]!;
    // DER lengths are minimal: no leading zero octet, and the long form only from 128 on.
    if (buf[pos - n] === 0 || len < 0x80) fail('non-minimal DER length');
  }
  const end = pos + len;
  if (end > limit) fail('DER value runs past its container');
  return { tag, start: offset, valueStart: pos, end };
}

/** Parses exactly one TLV spanning the whole buffer. */
export function readRoot(buf: Uint8Array): DerNode {
  const node = readNode(buf, 0, buf.length);
  if (node.end !== buf.length) fail('trailing bytes after DER value');
  return node;
}

export function children(buf: Uint8Array, node: DerNode): DerNode[] {
  // Only constructed encodings have children.
  if ((node.tag & 0x20) === 0) fail('expected a constructed DER value');
  const out: DerNode[] = [];
  let pos = node.valueStart;
  while (pos < node.end) {
    const child = readNode(buf, pos, node.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) fail(`missing ${what}`);
  if (node.tag !== tag) fail(`unexpected tag 0x${node.tag.toString(16)} for ${what}`);
  return node;
}

export function value(buf: Uint8Array, node: DerNode): Uint8Array {
  return buf.subarray(node.valueStart, node.end);
}

export function raw(buf: Uint8Array, node: DerNode): Uint8Array {
  return buf.subarray(node.start, node.end);
}

const oidCache = new Map<string, string>();

export function readOid(buf: Uint8Array, node: DerNode): string {
  if (node.tag !== TAG.OID) fail('expected an OID');
  const bytes = value(buf, node);
  if (bytes.length === 0) fail('empty OID');
  // OIDs repeat constantly (every extension, every algorithm), so remember their decoding by exact bytes.
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const hit = oidCache.get(key);
  if (hit !== undefined) return hit;
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (acc === 0 && b === 0x80) fail('non-minimal OID encoding');
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) fail('OID arc too large');
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = acc < 40 ? 0 : acc < 80 ? 1 : 2;
        parts.push(first, acc - first * 40);
      } else {
        parts.push(acc);
      }
      acc = 0;
    }
  }
  if ((bytes[bytes.length - 1]! & 0x80) !== 0) fail('truncated OID');
  const oid = parts.join('.');
  if (oidCache.size < 4096) oidCache.set(key, oid);
  return oid;
}

/** Small non-negative INTEGER (versions, path lengths). */
export function readSmallInt(buf: Uint8Array, node: DerNode): number {
  if (node.tag !== TAG.INTEGER) fail('expected an INTEGER');
  const bytes = value(buf, node);
  if (bytes.length === 0 || bytes.length > 6) fail('INTEGER out of range');
  if ((bytes[0]! & 0x80) !== 0) fail('negative INTEGER not allowed here');
  let n = 0;
  for (const b of bytes) n = n * 256 + b;
  return n;
}

export function readBoolean(buf: Uint8Array, node: DerNode): boolean {
  if (node.tag !== TAG.BOOLEAN || node.end - node.valueStart !== 1) fail('expected a BOOLEAN');
  const b = buf[node.valueStart]!;
  if (b === 0x00) return false;
  if (b === 0xff) return true;
  return fail('non-DER BOOLEAN');
}

/** BIT STRING contents without the unused-bits octet; only whole-octet strings are accepted. */
export function readBitStringBytes(buf: Uint8Array, node: DerNode): Uint8Array {
  if (node.tag !== TAG.BIT_STRING || node.end - node.valueStart < 1) fail('expected a BIT STRING');
  if (buf[node.valueStart] !== 0) fail('BIT STRING with unused bits');
  return buf.subarray(node.valueStart + 1, node.end);
}

/** BIT STRING as named bits (KeyUsage); bit 0 is the most significant bit of the first octet. */
export function readNamedBits(buf: Uint8Array, node: DerNode): (bit: number) => boolean {
  if (node.tag !== TAG.BIT_STRING || node.end - node.valueStart < 1) fail('expected a BIT STRING');
  const unused = buf[node.valueStart]!;
  if (unused > 7) fail('invalid BIT STRING');
  const bytes = buf.subarray(node.valueStart + 1, node.end);
  return (bit) => {
    const byte = bit >> 3;
    if (byte >= bytes.length) return false;
    return (bytes[byte]! & (0x80 >> (bit & 7))) !== 0;
  };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function readString(buf: Uint8Array, node: DerNode): string {
  const bytes = value(buf, node);
  try {
    return decoder.decode(bytes);
  } catch {
    return fail('invalid string encoding');
  }
}

function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) fail('invalid time');
    v = v * 10 + c;
  }
  return v;
}

/** UTCTime or GeneralizedTime (UTC, "Z" only) as milliseconds since the epoch. */
export function readTime(buf: Uint8Array, node: DerNode): number {
  const s = Buffer.from(value(buf, node)).toString('latin1');
  let year: number;
  let rest: number;
  if (node.tag === TAG.UTC_TIME) {
    if (s.length !== 13 || s[12] !== 'Z') fail('invalid UTCTime');
    const yy = digits(s, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (node.tag === TAG.GENERALIZED_TIME) {
    if (s.length < 15 || !s.endsWith('Z')) fail('invalid GeneralizedTime');
    year = digits(s, 0, 4);
    rest = 4;
  } else {
    return fail('expected a time');
  }
  const month = digits(s, rest, 2);
  const day = digits(s, rest + 2, 2);
  const hour = digits(s, rest + 4, 2);
  const minute = digits(s, rest + 6, 2);
  const second = digits(s, rest + 8, 2);
  let ms = 0;
  const after = rest + 10;
  if (node.tag === TAG.GENERALIZED_TIME && after < s.length - 1) {
    // Fractional seconds (RFC 3161 genTime may carry them): "." followed by digits.
    if (s[after] !== '.' || after + 1 >= s.length - 1) fail('invalid GeneralizedTime fraction');
    const frac = s.slice(after + 1, s.length - 1);
    if (!/^[0-9]+$/.test(frac)) fail('invalid GeneralizedTime fraction');
    ms = Math.floor(Number(`0.${frac}`) * 1000);
  } else if (after !== s.length - 1) {
    fail('invalid time length');
  }
  // RFC 5280 times start in 1950; refusing earlier years also keeps Date.UTC's 0-99 => 19xx mapping out of play.
  if (year < 1950) fail('time before 1950');
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) fail('time out of range');
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(t);
  if (check.getUTCDate() !== day) fail('invalid calendar date');
  return t;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
