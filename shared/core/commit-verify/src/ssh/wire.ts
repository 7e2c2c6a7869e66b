/**
 * SSH wire encoding (RFC 4251 §5): uint32, length-prefixed strings and mpints.
 *
 * The reader is strict on purpose: every length is bounds-checked before use and callers assert that nothing is
 * left over, so a crafted blob can never make us read outside the buffer or smuggle unsigned trailing bytes.
 */
import { BaseError } from '@gitops-gate/contracts/errors';

/** Raised for any structural problem; verifiers turn it into a rejection, it never escapes the public API. */
export class SshWireError extends BaseError<'SSH_WIRE_MALFORMED'> {
  constructor(message: string) {
    super('SSH_WIRE_MALFORMED', message);
  }
}

export class WireReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u32(what: string): number {
    if (this.remaining < 4) throw new SshWireError(`truncated before ${what}`);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number, what: string): Buffer {
    if (n > this.remaining) throw new SshWireError(`truncated ${what}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A length-prefixed byte string. */
  string(what: string): Buffer {
    const len = this.u32(`${what} length`);
    return this.bytes(len, what);
  }

  /** A string used as text: like OpenSSH's sshbuf_get_cstring it may not contain NUL bytes. */
  text(what: string): string {
    const b = this.string(what);
    if (b.includes(0)) throw new SshWireError(`${what} contains a NUL byte`);
    return b.toString('latin1');
  }

  /**
   * A non-negative mpint, returned as its magnitude without leading zero bytes. Negative values are refused
   * (OpenSSH does the same); redundant leading zeros are tolerated because OpenSSH tolerates them, and callers
   * re-encode canonically before comparing or fingerprinting.
   */
  mpint(what: string): Buffer {
    const b = this.string(what);
    if (b.length > 0 && (b[0]! & 0x80) !== 0) throw new SshWireError(`${what} is negative`);
    let i = 0;
    while (i < b.length && b[i] === 0) i++;
    return b.subarray(i);
  }

  end(what: string): void {
    if (this.remaining !== 0) throw new SshWireError(`${this.remaining} unexpected trailing bytes after ${what}`);
  }
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function sshString(data: Uint8Array | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([u32(b.length), b]);
}

/** Canonical mpint encoding of a magnitude (no leading zeros except one when the top bit is set). */
export function sshMpint(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = Buffer.from(magnitude.subarray(i));
  const body = m.length > 0 && (m[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), m]) : m;
  return sshString(body);
}

const B64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64: Node's decoder silently skips characters it does not know, which would let different texts decode
 * to the same bytes. We accept only the one canonical encoding of the decoded bytes (padding required, unused bits
 * zero), like OpenSSH's b64_pton apart from the whitespace, which callers strip explicitly.
 */
export function decodeBase64Strict(text: string): Buffer | null {
  if (!B64_CANONICAL.test(text)) return null;
  const out = Buffer.from(text, 'base64');
  if (out.toString('base64') !== text) return null;
  return out;
}

export function base64NoPad(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64').replace(/=+$/, '');
}
