/**
 * Buffer views over @gitops-gate/bundle-verify's DER reader, in the shape the CMS envelope code reads best: each
 * element as its whole encoding (`raw`) and its content octets. All parsing (tags, strict minimal lengths, OIDs)
 * is bundle-verify's; nothing here decodes DER by itself.
 */
import { TAG, VerifyError, children as derChildren, readOid, readRoot } from '@gitops-gate/bundle-verify';
import type { DerNode } from '@gitops-gate/bundle-verify';

export { TAG };

export interface Tlv {
  /** The identifier octet as is (class | constructed | number). */
  readonly tag: number;
  /** The whole element: identifier, length and content. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** A structural DER problem (bundle-verify's DER_INVALID code). */
export class DerError extends VerifyError {
  constructor(reason: string) {
    super('DER_INVALID', reason);
  }
}

export function isDerError(err: unknown): err is VerifyError {
  return err instanceof VerifyError && err.code === 'DER_INVALID';
}

/** Context-specific tag [n], constructed or primitive. */
export function ctx(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

function view(buf: Buffer, n: DerNode): Tlv {
  return { tag: n.tag, raw: buf.subarray(n.start, n.end), content: buf.subarray(n.valueStart, n.end) };
}

/** Exactly one element spanning all of `buf`. */
export function parseDer(buf: Buffer): Tlv {
  return view(buf, readRoot(buf));
}

/** The elements inside a constructed element, in order. */
export function children(tlv: Tlv): Tlv[] {
  return derChildren(tlv.raw, readRoot(tlv.raw)).map((n) => view(tlv.raw, n));
}

export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag)
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got ${tlv ? '0x' + tlv.tag.toString(16) : 'nothing'}`);
  return tlv;
}

/** Dotted form of an OBJECT IDENTIFIER. */
export function decodeOid(tlv: Tlv): string {
  return readOid(tlv.raw, readRoot(tlv.raw));
}
