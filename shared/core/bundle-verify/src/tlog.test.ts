import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VerifyError } from './errors.js';
import { merkleRoot, parseSignedNote, verifyCheckpoint } from './tlog.js';
import type { TlogInstance } from './trust.js';

const h = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const leaf = (d: Buffer) => h(Buffer.from([0]), d);
const node = (l: Buffer, r: Buffer) => h(Buffer.from([1]), l, r);

// RFC 6962 2.1: MTH and PATH, written from the definitions as an independent reference.
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
function mth(d: Buffer[]): Buffer {
  if (d.length === 1) return leaf(d[0]!);
  const k = split(d.length);
  return node(mth(d.slice(0, k)), mth(d.slice(k)));
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const k = split(d.length);
  return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

describe('Merkle inclusion (RFC 9162 2.1.3.2)', () => {
  it('accepts every correct proof and rejects wrong index, size, sibling or leaf', () => {
    for (let n = 1; n <= 33; n++) {
      const data = Array.from({ length: n }, (_, i) => Buffer.from(`entry-${i}`));
      const root = mth(data);
      for (let m = 0; m < n; m++) {
        const proof = path(m, data);
        const lh = leaf(data[m]!);
        expect(merkleRoot(BigInt(m), BigInt(n), lh, proof)?.equals(root), `n=${n} m=${m}`).toBe(true);
        if (n > 1) {
          const wrongIndex = merkleRoot(BigInt((m + 1) % n), BigInt(n), lh, proof);
          expect(wrongIndex === undefined || !wrongIndex.equals(root)).toBe(true);
          expect(merkleRoot(BigInt(m), BigInt(n), leaf(Buffer.from('other')), proof)?.equals(root)).toBe(false);
        }
        if (proof.length > 0) {
          const bad = proof.map((p) => Buffer.from(p));
          bad[bad.length - 1]![0]! ^= 1;
          expect(merkleRoot(BigInt(m), BigInt(n), lh, bad)?.equals(root)).toBe(false);
          expect(merkleRoot(BigInt(m), BigInt(n), lh, proof.slice(1))?.equals(root) ?? false).toBe(false);
        }
        expect(
          merkleRoot(BigInt(m), BigInt(n), lh, [...proof, root]) === undefined ||
            !merkleRoot(BigInt(m), BigInt(n), lh, [...proof, root])!.equals(root),
        ).toBe(true);
        const bigger = merkleRoot(BigInt(m), BigInt(n + 1), lh, proof);
        expect(bigger === undefined || !bigger.equals(mth([...data, Buffer.from('x')]))).toBe(true);
      }
      expect(merkleRoot(BigInt(n), BigInt(n), leaf(Buffer.from('x')), [])).toBeUndefined();
    }
  });
});

function makeLog(host: string): { tlog: TlogInstance; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const logId = createHash('sha256')
    .update(publicKey.export({ format: 'der', type: 'spki' }))
    .digest();
  return {
    tlog: { logId, checkpointKeyId: logId, baseUrl: `https://${host}`, host, key: publicKey, start: 0, end: Number.MAX_SAFE_INTEGER },
    privateKey,
  };
}

function signNote(text: string, name: string, log: { tlog: TlogInstance; privateKey: KeyObject }): string {
  const sig = sign('sha256', Buffer.from(text), log.privateKey);
  return `\u2014 ${name} ${Buffer.concat([log.tlog.logId.subarray(0, 4), sig]).toString('base64')}\n`;
}

describe('checkpoints (signed notes)', () => {
  const log = makeLog('rekor.example.dev');
  const other = makeLog('witness.example');
  const root = createHash('sha256').update('root').digest('base64');
  const text = `rekor.example.dev - 123\n42\n${root}\n`;
  const code = (f: () => unknown) => {
    try {
      f();
      return 'OK';
    } catch (e) {
      return e instanceof VerifyError ? e.code : 'THROW';
    }
  };

  it('accepts the log signature in any position among unknown ones', () => {
    const env = `${text}\n${signNote(text, 'witness.example', other)}${signNote(text, 'rekor.example.dev', log)}`;
    expect(verifyCheckpoint(env, log.tlog)).toMatchObject({ origin: 'rekor.example.dev - 123', size: 42n });
  });

  it('rejects wrong name, wrong key, wrong origin, altered text, missing parts', () => {
    expect(code(() => verifyCheckpoint(`${text}\n${signNote(text, 'rekor.example.de', log)}`, log.tlog))).toBe('CHECKPOINT_INVALID');
    expect(code(() => verifyCheckpoint(`${text}\n${signNote(text, 'rekor.example.dev', other)}`, log.tlog))).toBe('CHECKPOINT_INVALID');
    const foreign = `evil.example - 1\n42\n${root}\n`;
    expect(code(() => verifyCheckpoint(`${foreign}\n${signNote(foreign, 'rekor.example.dev', log)}`, log.tlog))).toBe('CHECKPOINT_INVALID');
    const sig = signNote(text, 'rekor.example.dev', log);
    expect(code(() => verifyCheckpoint(`${text.replace('42', '43')}\n${sig}`, log.tlog))).toBe('CHECKPOINT_INVALID');
    expect(code(() => verifyCheckpoint(`${text}\n`, log.tlog))).toBe('CHECKPOINT_INVALID');
    expect(code(() => verifyCheckpoint(`${text}\n${sig.trimEnd()}`, log.tlog))).toBe('CHECKPOINT_INVALID');
    expect(code(() => verifyCheckpoint(`${text}\n${sig}garbage line\n`, log.tlog))).toBe('CHECKPOINT_INVALID');
    for (const body of [
      `42\n${root}\n`,
      `rekor.example.dev - 123\n${root}\n`,
      `rekor.example.dev - 123\n42\n`,
      `rekor.example.dev - 123\n042\n${root}\n`,
      `rekor.example.dev - 123\n42\nAAAA\n`,
    ]) {
      expect(
        code(() => parseSignedNote(`${body}\n${signNote(body, 'rekor.example.dev', log)}`)),
        body,
      ).toBe('CHECKPOINT_INVALID');
    }
  });
});
