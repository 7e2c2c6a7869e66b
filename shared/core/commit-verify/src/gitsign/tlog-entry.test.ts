import { describe, expect, it } from 'vitest';
import { TlogEntryDecodeError, decodeTransparencyLogEntry, hashedRekordBody } from './tlog-entry.js';

const varint = (n: number) => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};
const field = (num: number, wire: number, payload: number[]) => [
  ...varint((num << 3) | wire),
  ...(wire === 2 ? varint(payload.length) : []),
  ...payload,
];
const logId = field(2, 2, field(1, 2, Array(32).fill(7)));

describe('TransparencyLogEntry decoding', () => {
  it('decodes the fields gitsign writes', () => {
    const e = decodeTransparencyLogEntry(
      Buffer.from([
        ...field(1, 0, varint(2281687355)),
        ...logId,
        ...field(3, 2, [...field(1, 2, [...Buffer.from('hashedrekord')]), ...field(2, 2, [...Buffer.from('0.0.1')])]),
        ...field(4, 0, varint(1785347784)),
        ...field(5, 2, field(1, 2, [1, 2, 3])),
        ...field(6, 2, [
          ...field(1, 0, varint(5)),
          ...field(2, 2, Array(32).fill(1)),
          ...field(3, 0, varint(9)),
          ...field(4, 2, [4]),
          ...field(4, 2, [5]),
          ...field(5, 2, field(1, 2, [...Buffer.from('cp\n')])),
        ]),
      ]),
    );
    expect(e.logIndex).toBe(2281687355n);
    expect(e.logId).toEqual(Buffer.alloc(32, 7));
    expect([e.kind, e.version]).toEqual(['hashedrekord', '0.0.1']);
    expect(e.integratedTime).toBe(1785347784n);
    expect(e.signedEntryTimestamp).toEqual(Buffer.from([1, 2, 3]));
    expect(e.inclusionProof).toMatchObject({ logIndex: 5n, treeSize: 9n, checkpoint: 'cp\n' });
    expect(e.inclusionProof?.hashes).toEqual([Buffer.from([4]), Buffer.from([5])]);
    expect(e.canonicalizedBody).toBeUndefined();
  });

  const malformed: Array<[string, number[]]> = [
    ['an empty buffer (no log id)', []],
    ['a duplicated singular field', [...logId, ...field(1, 0, [1]), ...field(1, 0, [2])]],
    ['an unknown field', [...logId, ...field(9, 0, [1])]],
    ['a field with the wrong wire type', [...logId, ...field(1, 2, [1])]],
    ['a truncated length', [...logId, 0x12, 0x05, 0x01]],
    ['a truncated varint', [...logId, 0x08, 0x80]],
    ['an overlong varint', [...logId, 0x08, ...Array(10).fill(0x80), 0x01]],
    ['a non-minimal varint', [...logId, 0x08, 0x81, 0x00]],
    ['a negative int64', [...logId, 0x08, ...Array(9).fill(0xff), 0x01]],
    ['field number 0', [...logId, 0x00, 0x01]],
    ['deprecated group wire type', [...logId, 0x0b]],
    ['a non-UTF-8 kind', [...logId, ...field(3, 2, field(1, 2, [0xff, 0xfe]))]],
  ];
  for (const [name, bytes] of malformed) {
    it(`rejects ${name}`, () => {
      expect(() => decodeTransparencyLogEntry(Buffer.from(bytes))).toThrow(TlogEntryDecodeError);
    });
  }
});

describe('hashedrekord body', () => {
  it('is the canonical JSON Rekor stores, with the certificate as 64-column PEM', () => {
    const cert = Buffer.alloc(100, 0xab);
    const body = JSON.parse(hashedRekordBody(Buffer.alloc(32, 1), Buffer.from([9, 9]), cert).toString('utf8'));
    expect(body).toEqual({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: '01'.repeat(32) } },
        signature: { content: 'CQk=', publicKey: { content: body.spec.signature.publicKey.content } },
      },
    });
    const pemText = Buffer.from(body.spec.signature.publicKey.content, 'base64').toString('utf8');
    const b64 = cert.toString('base64');
    expect(pemText).toBe(
      `-----BEGIN CERTIFICATE-----\n${b64.slice(0, 64)}\n${b64.slice(64, 128)}\n${b64.slice(128)}\n-----END CERTIFICATE-----\n`,
    );
    expect(hashedRekordBody(Buffer.alloc(32, 1), Buffer.from([9, 9]), cert).toString('utf8')).toMatch(
      /^\{"apiVersion":"0\.0\.1","kind":"hashedrekord","spec":\{"data"/,
    );
  });
});
