import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import type { SignaturePacket } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import type { MethodResult } from '../types.js';
import { createGpgKeyring, type GpgKeyring } from './keyring.js';
import { verifyGpgCommitSignature } from './verify.js';

const PGP_DIR = new URL('../../../../../../shared/fixtures/git-commits/pgp/', import.meta.url).pathname;
const FIXTURE = parseCommit(readFileSync(join(PGP_DIR, '0428dc0d9141bb201c788a9c04a9eeae1e7d0eac.commit')));
const WEB_FLOW_KEY = readFileSync(join(PGP_DIR, 'github-web-flow-2017.asc'), 'utf8');
const { enums } = openpgp;

/** Small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function verifyNoThrow(payload: Uint8Array, signature: string, keyring: GpgKeyring): Promise<MethodResult> {
  // Any throw fails the test through the rejected promise.
  const result = await verifyGpgCommitSignature({ payload, signature, keyring, now: new Date('2030-01-01T00:00:00Z') });
  expect(result.method === 'gpg').toBe(true);
  if (!result.ok) expect(result.code.length > 0 && result.reason.length > 0).toBe(true);
  return result;
}

describe('payload mutations', () => {
  let keyring: GpgKeyring;
  beforeAll(async () => {
    keyring = await createGpgKeyring([WEB_FLOW_KEY]);
  });

  it('the unmodified fixture verifies', async () => {
    expect(await verifyNoThrow(FIXTURE.payload, FIXTURE.signature!, keyring)).toMatchObject({ ok: true });
  });

  it('flipping any single byte of the signed payload is rejected', async () => {
    const payload = FIXTURE.payload;
    expect(payload.length).toBeGreaterThan(500);
    let rejected = 0;
    for (let i = 0; i < payload.length; i++) {
      for (const mask of [0xff, 0x01]) {
        const mutated = Buffer.from(payload);
        mutated[i]! ^= mask;
        const result = await verifyNoThrow(mutated, FIXTURE.signature!, keyring);
        expect(result, `byte ${i} ^ ${mask}`).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_INVALID' });
        rejected++;
      }
    }
    expect(rejected).toBe(payload.length * 2);
  });

  it('truncating or extending the payload is rejected', async () => {
    const p = FIXTURE.payload;
    for (const mutated of [p.subarray(0, p.length - 1), p.subarray(1), Buffer.concat([p, Buffer.from('\n')]), Buffer.alloc(0)]) {
      expect(await verifyNoThrow(mutated, FIXTURE.signature!, keyring)).toMatchObject({ ok: false });
    }
  });
});

/**
 * Random mutations of the armored signature. Most break the armor or the packet and must be MALFORMED; the rest must
 * fail verification. The only mutations allowed to still verify are those that leave the signature itself unchanged:
 * the armor checksum (RFC 9580 says not to reject on it), whitespace, armor headers, the unhashed subpacket area and
 * the redundant bit count of an MPI. The oracle re-parses the mutated text and compares the signed part and the
 * signature value with the original.
 */
describe('signature mutations', () => {
  const PER_BASE = 1000;
  const bases: { name: string; payload: Uint8Array; signature: string; packet: SignaturePacket }[] = [];
  let keyring: GpgKeyring;

  function writeParams(p: SignaturePacket): Uint8Array {
    return (p as unknown as { writeParams(): Uint8Array }).writeParams();
  }

  async function sameSignature(mutated: string, original: SignaturePacket): Promise<boolean> {
    try {
      const sig = await openpgp.readSignature({ armoredSignature: mutated });
      if (sig.packets.length !== 1) return false;
      const p = sig.packets[0]!;
      return (
        Buffer.from(p.signatureData!).equals(Buffer.from(original.signatureData!)) &&
        Buffer.from(p.signedHashValue!).equals(Buffer.from(original.signedHashValue!)) &&
        Buffer.from(writeParams(p)).equals(Buffer.from(writeParams(original)))
      );
    } catch {
      return false;
    }
  }

  beforeAll(async () => {
    const date = new Date('2025-06-01T00:00:00Z');
    const v4 = (await openpgp.generateKey({ userIDs: [{ email: 'v4@example.com' }], date, format: 'object' })).privateKey;
    const v6 = (
      await openpgp.generateKey({
        type: 'curve25519',
        userIDs: [{ email: 'v6@example.com' }],
        date,
        config: { v6Keys: true },
        format: 'object',
      })
    ).privateKey;
    keyring = await createGpgKeyring([WEB_FLOW_KEY, v4.toPublic().armor(), v6.toPublic().armor()]);
    const payload = FIXTURE.payload;
    const signWith = async (key: openpgp.PrivateKey) =>
      (await openpgp.sign({
        message: await openpgp.createMessage({ binary: payload }),
        signingKeys: key,
        detached: true,
        date: new Date('2025-06-02T00:00:00Z'),
      })) as string;
    for (const [name, signature] of [
      ['web-flow RSA (fixture)', FIXTURE.signature!],
      ['openpgp.js v4 EdDSA', await signWith(v4)],
      ['openpgp.js v6 Ed25519', await signWith(v6)],
    ] as const) {
      const packet = (await openpgp.readSignature({ armoredSignature: signature })).packets[0]!;
      bases.push({ name, payload, signature, packet });
      expect(await verifyNoThrow(payload, signature, keyring), name).toMatchObject({ ok: true });
    }
  });

  function mutateText(text: string, rnd: () => number): string {
    const pick = (n: number) => Math.floor(rnd() * n);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n -:\r\t\u00e9';
    const lines = text.split('\n');
    switch (pick(7)) {
      case 0: {
        const i = pick(text.length);
        return text.slice(0, i) + alphabet[pick(alphabet.length)] + text.slice(i + 1);
      }
      case 1: {
        const i = pick(text.length);
        return text.slice(0, i) + text.slice(i + 1);
      }
      case 2: {
        const i = pick(text.length + 1);
        return text.slice(0, i) + alphabet[pick(alphabet.length)] + text.slice(i);
      }
      case 3:
        return text.slice(0, pick(text.length));
      case 4: {
        const i = pick(lines.length);
        lines.splice(i, 0, lines[i]!);
        return lines.join('\n');
      }
      case 5: {
        lines.splice(pick(lines.length), 1);
        return lines.join('\n');
      }
      default: {
        const i = pick(lines.length);
        const j = pick(lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        return lines.join('\n');
      }
    }
  }

  function mutateBytes(bytes: Uint8Array, rnd: () => number, inPlace: boolean): Uint8Array {
    const pick = (n: number) => Math.floor(rnd() * n);
    const b = Array.from(bytes);
    switch (inPlace ? pick(2) : pick(6)) {
      case 0:
        if (b.length) b[pick(b.length)]! ^= 1 << pick(8);
        break;
      case 1:
        if (b.length) b[pick(b.length)] = pick(256);
        break;
      case 2:
        b.splice(pick(b.length + 1), 0, pick(256));
        break;
      case 3:
        b.splice(pick(b.length), 1);
        break;
      case 4:
        b.length = pick(b.length);
        break;
      default:
        for (let n = 1 + pick(8); n > 0; n--) b.push(pick(256));
    }
    return new Uint8Array(b);
  }

  it(`${3 * PER_BASE} random mutations never throw and never verify unless the signature is unchanged`, async () => {
    const codes = new Map<string, number>();
    let equivalentAccepted = 0;
    for (const [baseIndex, base] of bases.entries()) {
      const framed = new openpgp.PacketList<SignaturePacket>();
      framed.push(base.packet);
      const packetBytes = framed.write();
      expect(packetBytes.length).toBeGreaterThan(0);
      for (let n = 0; n < PER_BASE; n++) {
        const seed = baseIndex * 1_000_000 + n;
        const rnd = prng(seed);
        let mutated: string;
        if (rnd() < 0.5) {
          mutated = base.signature;
          for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) mutated = mutateText(mutated, rnd);
        } else {
          // Byte-level mutation re-armored with a correct checksum, so it reaches the packet parser and the crypto.
          // Half of them keep every length intact (bit flips, byte overwrites) to get past framing more often.
          const inPlace = rnd() < 0.5;
          let bytes: Uint8Array = packetBytes;
          for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) bytes = mutateBytes(bytes, rnd, inPlace);
          mutated = openpgp.armor(enums.armor.signature, bytes);
        }
        if (mutated === base.signature) continue;
        const result = await verifyNoThrow(base.payload, mutated, keyring);
        if (result.ok) {
          expect(await sameSignature(mutated, base.packet), `${base.name} seed ${seed} accepted a changed signature:\n${mutated}`).toBe(
            true,
          );
          equivalentAccepted++;
        } else {
          codes.set(result.code, (codes.get(result.code) ?? 0) + 1);
        }
      }
    }
    const rejected = [...codes.values()].reduce((a, b) => a + b, 0);
    // The fuzz must reach past the parser: a good share of rejections come from verification proper.
    const deep = rejected - (codes.get('GPG_SIGNATURE_MALFORMED') ?? 0);
    expect(deep).toBeGreaterThan(rejected * 0.15);
    expect(codes.has('GPG_VERIFY_FAILED')).toBe(false);
    console.info(
      `signature mutations: ${rejected} rejected ${JSON.stringify(Object.fromEntries(codes))}, ${equivalentAccepted} unchanged signatures accepted`,
    );
  });
});
