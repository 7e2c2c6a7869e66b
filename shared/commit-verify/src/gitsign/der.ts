/**
 * A deliberately small, strict DER reader for the CMS envelope.
 *
 * Strict on purpose: definite minimal lengths only, low tag numbers only, no trailing bytes. The signature over the
 * signed attributes is checked against their exact original bytes, so BER leniency would buy nothing but ambiguity.
 */

export class DerError extends Error {}

export interface Tlv {
  /** The identifier octet as is (class | constructed | number). */
  readonly tag: number;
  readonly constructed: boolean;
  /** The whole element: identifier, length and content. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

export const TAG = {
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

/** Context-specific tag [n], constructed or primitive. */
export function ctx(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** Reads exactly one element spanning all of `buf`. */
export function parseDer(buf: Buffer): Tlv {
  const [tlv, end] = readAt(buf, 0);
  if (end !== buf.length) throw new DerError('trailing bytes after DER element');
  return tlv;
}

/** The elements inside a constructed element, in order. */
export function children(tlv: Tlv): Tlv[] {
  if (!tlv.constructed) throw new DerError('expected a constructed element');
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < tlv.content.length) {
    const [child, next] = readAt(tlv.content, pos);
    out.push(child);
    pos = next;
  }
  return out;
}

export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got ${tlv ? '0x' + tlv.tag.toString(16) : 'nothing'}`);
  return tlv;
}

function readAt(buf: Buffer, start: number): [Tlv, number] {
  if (start + 2 > buf.length) throw new DerError('truncated DER element');
  const tag = buf[start]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  let pos = start + 1;
  const first = buf[pos++]!;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('length field too long');
    if (pos + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++]!;
    if (buf[pos - n] === 0 || len < 0x80) throw new DerError('non-minimal length encoding');
  }
  const end = pos + len;
  if (end > buf.length) throw new DerError('DER element runs past its container');
  const constructed = (tag & 0x20) !== 0;
  return [{ tag, constructed, raw: buf.subarray(start, end), content: buf.subarray(pos, end) }, end];
}

/** Dotted form of an OBJECT IDENTIFIER's content octets. */
export function decodeOid(tlv: Tlv): string {
  if (tlv.tag !== TAG.OID || tlv.content.length === 0) throw new DerError('expected an OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  let fresh = true;
  for (const b of tlv.content) {
    if (fresh && b === 0x80) throw new DerError('non-minimal OID arc');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw new DerError('OID arc too large');
    fresh = (b & 0x80) === 0;
    if (fresh) {
      arcs.push(value);
      value = 0;
    }
  }
  if (!fresh) throw new DerError('truncated OID');
  const head = arcs.shift()!;
  const a = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [a, head - a * 40, ...arcs].join('.');
}
