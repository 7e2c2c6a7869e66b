// Strict decoders for the attacker-controlled string fields of a bundle. Buffer.from(s, 'base64') silently skips
// characters it does not understand, so a corrupted field could decode to *something*; we refuse instead.
import { reject } from './errors.js';

/** Standard or URL-safe base64 (the protobuf JSON mapping accepts both), padding optional. */
export function decodeBase64(input: unknown, what: string): Buffer {
  if (typeof input !== 'string') reject('BUNDLE_INVALID', `${what} is not a base64 string`);
  // Line breaks carry no data; Go's and Python's decoders skip them and real bundles contain wrapped base64
  // (e.g. a timestamp pasted from `base64` output). Every other stray character is still refused.
  const s = input.includes('\n') || input.includes('\r') ? input.replace(/[\r\n]/g, '') : input;
  // Node's decoder skips characters it does not know and accepts both alphabets, so strictness comes from
  // re-encoding: the input must be exactly the canonical encoding (in one alphabet, padded or not) of its bytes.
  // This also rejects non-zero trailing bits, i.e. a second spelling of the same bytes, without a regex pass.
  const out = Buffer.from(s, 'base64');
  const std = out.toString('base64');
  if (s === std || (s.length === std.length - paddingOf(std) && std.startsWith(s))) return out;
  const url = out.toString('base64url');
  if (s === url || s === url + '='.repeat(paddingOf(std))) return out;
  return reject('BUNDLE_INVALID', `${what} is not valid base64`);
}

function paddingOf(b64: string): number {
  return b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
}

const UINT = /^(0|[1-9][0-9]*)$/;

/** proto3 JSON int64/uint64: a decimal string (or a safe JSON integer); negatives are refused. */
export function parseUint(v: unknown, what: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) reject('BUNDLE_INVALID', `${what} is not a non-negative integer`);
    return BigInt(v);
  }
  if (typeof v !== 'string' || v.length > 20 || !UINT.test(v)) {
    reject('BUNDLE_INVALID', `${what} is not a non-negative integer`);
  }
  return BigInt(v);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function pemToDer(pem: string, label: string): Buffer {
  const m = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\s*$/.exec(pem);
  if (m === null || m[1] !== label) reject('PEM_INVALID', `expected a single PEM ${label}`);
  return decodeBase64(m[2]!.replace(/[\r\n]/g, ''), `PEM ${label}`);
}
