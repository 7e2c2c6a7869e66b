/**
 * Robustness of verifySshCommitSignature: exhaustive bit flips, every truncation and thousands of seeded random
 * mutations of real signatures. Properties: it never throws, never takes the unexpected-error path, always answers
 * with a known code and a one-line reason, and never accepts anything but the original signature.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import type { MethodResult } from '../types.js';
import { parseAllowedSigners } from './allowed-signers.js';
import type { AllowedSigner } from './allowed-signers.js';
import { armor, generateTestKey, sshsigSign } from './test-kit.js';
import type { TestKeyKind } from './test-kit.js';
import { SSH_REJECT_CODES, verifySshCommitSignature } from './verify.js';

const SSH_FIXTURES = new URL('../../../../../../shared/fixtures/git-commits/ssh/', import.meta.url).pathname;
const KNOWN_CODES = new Set<string>(SSH_REJECT_CODES.filter((c) => c !== 'SSH_VERIFY_ERROR'));

/** mulberry32: deterministic, so any failure reproduces from its seed. */
function prng(seed: number): (n: number) => number {
  let s = seed | 0;
  return (n) => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

interface Case {
  name: string;
  payload: Buffer;
  signature: string;
  blob: Buffer;
  allowedSigners: AllowedSigner[];
  principal: string;
  at: Date;
}

function dearmoredBlob(signature: string): Buffer {
  return Buffer.from(
    signature
      .split('\n')
      .filter((l) => !l.startsWith('-----'))
      .join(''),
    'base64',
  );
}

function cases(): Case[] {
  const out: Case[] = [];
  const file = readdirSync(SSH_FIXTURES).find((f) => f.endsWith('.commit'))!;
  const c = parseCommit(readFileSync(join(SSH_FIXTURES, file)));
  out.push({
    name: 'fixture ssh-rsa',
    payload: c.payload,
    signature: c.signature!,
    blob: dearmoredBlob(c.signature!),
    allowedSigners: parseAllowedSigners(readFileSync(join(SSH_FIXTURES, 'allowed_signers'), 'utf8')),
    principal: c.committer.email,
    at: new Date(c.committer.timestamp * 1000),
  });
  const payload = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter A <a@example.com> 1700000000 +0000\n\nfuzz\n');
  for (const kind of ['ed25519', 'p256', 'p384', 'p521', 'rsa2048'] as TestKeyKind[]) {
    const key = generateTestKey(kind);
    const blob = sshsigSign(key, payload);
    out.push({
      name: kind,
      payload,
      signature: armor(blob),
      blob,
      allowedSigners: parseAllowedSigners(`a@example.com ${key.line}`),
      principal: 'a@example.com',
      at: new Date(1_700_000_000_000),
    });
  }
  return out;
}

const CASES = cases();

function run(c: Case, signature: string, payload: Uint8Array = c.payload): MethodResult {
  return verifySshCommitSignature({ payload, signature, allowedSigners: c.allowedSigners, principal: c.principal, at: c.at });
}

/** Every answer must be a well-formed rejection with a known code. */
function expectCleanReject(r: MethodResult, what: string): void {
  if (r.ok) throw new Error(`accepted a mutated signature: ${what}`);
  if (!KNOWN_CODES.has(r.code)) throw new Error(`unexpected code ${r.code} (${r.reason}) for ${what}`);
  if (r.reason.length === 0 || r.reason.includes('\n')) throw new Error(`bad reason ${JSON.stringify(r.reason)} for ${what}`);
}

describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  it('the unmutated signature verifies (the baseline the mutations break)', () => {
    expect(run(c, c.signature).ok).toBe(true);
  });

  it('every single-bit flip of the binary signature is rejected', () => {
    let n = 0;
    for (let i = 0; i < c.blob.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(c.blob);
        b[i] = b[i]! ^ (1 << bit);
        expectCleanReject(run(c, armor(b)), `byte ${i} bit ${bit}`);
        n++;
      }
    }
    expect(n).toBe(c.blob.length * 8);
  });

  it('every single-bit flip of the armored text is rejected', () => {
    for (let i = 0; i < c.signature.length; i++) {
      for (const mask of [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40]) {
        const text = c.signature.slice(0, i) + String.fromCharCode(c.signature.charCodeAt(i) ^ mask) + c.signature.slice(i + 1);
        expectCleanReject(run(c, text), `char ${i} ^ ${mask}`);
      }
    }
  });

  it('every truncation is rejected', () => {
    for (let len = 0; len < c.blob.length; len++) expectCleanReject(run(c, armor(c.blob.subarray(0, len))), `truncated to ${len}`);
    for (let len = 0; len < c.signature.length; len++) expectCleanReject(run(c, c.signature.slice(0, len)), `text truncated to ${len}`);
  });

  it('3000 random binary mutations: never throws, never accepts', () => {
    const rnd = prng(0xc0ffee ^ c.blob.length);
    const other = CASES[(CASES.indexOf(c) + 1) % CASES.length]!.blob;
    let tried = 0;
    while (tried < 3000) {
      let b = Buffer.from(c.blob);
      const ops = 1 + rnd(4);
      for (let k = 0; k < ops; k++) {
        const at = rnd(b.length + 1);
        switch (rnd(7)) {
          case 0: // overwrite a byte
            if (b.length > 0) b[rnd(b.length)] = rnd(256);
            break;
          case 1: // insert random bytes
            b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rnd(8) }, () => rnd(256))), b.subarray(at)]);
            break;
          case 2: // delete a range
            b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rnd(16)))]);
            break;
          case 3: // duplicate a range
            b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + rnd(32)), b.subarray(at)]);
            break;
          case 4: // write a plausible or hostile length field
            if (b.length >= 4) b.writeUInt32BE([0, 1, 0x7fffffff, 0xffffffff, rnd(512)][rnd(5)]!, rnd(b.length - 3));
            break;
          case 5: // splice in part of another valid signature
            b = Buffer.concat([b.subarray(0, at), other.subarray(rnd(other.length)), b.subarray(Math.min(b.length, at + rnd(64)))]);
            break;
          default: // cut
            b = b.subarray(0, at);
        }
      }
      if (b.equals(c.blob)) continue;
      expectCleanReject(run(c, armor(b)), `random mutation ${tried}`);
      tried++;
    }
  });

  it('2000 random text mutations: never throws; accepts only line-break/blank changes of the same text', () => {
    const rnd = prng(0xbadc0de ^ c.signature.length);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-\n\r \t\0\u00e9\u2028\ufffd';
    const norm = (s: string): string => s.replace(/[\r\n]/g, '').trim();
    for (let i = 0; i < 2000; i++) {
      let t = c.signature;
      const ops = 1 + rnd(3);
      for (let k = 0; k < ops; k++) {
        const at = rnd(t.length + 1);
        const ch = alphabet[rnd(alphabet.length)]!;
        const op = rnd(3);
        if (op === 0) t = t.slice(0, at) + ch + t.slice(at + 1);
        else if (op === 1) t = t.slice(0, at) + ch + t.slice(at);
        else t = t.slice(0, at) + t.slice(at + 1 + rnd(4));
      }
      const r = run(c, t);
      if (r.ok) expect(norm(t)).toBe(norm(c.signature));
      else expectCleanReject(r, `text mutation ${i}`);
    }
  });

  it('the signature still rejects any random change of the payload', () => {
    const rnd = prng(0x5157);
    for (let i = 0; i < 300; i++) {
      const p = Buffer.from(c.payload);
      p[rnd(p.length)] = p[rnd(p.length)]! ^ (1 + rnd(255));
      if (p.equals(c.payload)) continue;
      expectCleanReject(run(c, c.signature, p), `payload mutation ${i}`);
    }
  });
});

describe('garbage', () => {
  const c = CASES[0]!;
  it('random strings, random bytes and random armored bytes are rejected cleanly', () => {
    const rnd = prng(42);
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: rnd(400) }, () => rnd(256)));
      expectCleanReject(run(c, bytes.toString('latin1')), `random text ${i}`);
      expectCleanReject(run(c, armor(bytes)), `random armored bytes ${i}`);
      // Random bytes behind a valid SSHSIG preamble and version, to get past the first checks.
      expectCleanReject(run(c, armor(Buffer.concat([Buffer.from('SSHSIG\0\0\0\x01', 'latin1'), bytes]))), `random after preamble ${i}`);
    }
  });
});
