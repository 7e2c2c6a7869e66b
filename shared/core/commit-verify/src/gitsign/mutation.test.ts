import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { decodeSignaturePem, parseGitsignCms } from './cms.js';
import { verifyGitsignCommitSignature } from './index.js';
import type { GitsignIdentityRule } from './index.js';

const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../../../../../shared/fixtures/git-commits');
const SHA = '200ca8647599a02ce268818bb428eeb686e8d99f';
const commit = parseCommit(readFileSync(join(FIXTURES, 'gitsign-offline', `${SHA}.commit`)));
const trust = createBundleTrust();
const identities: GitsignIdentityRule[] = [{ identity: 'billy@chainguard.dev', issuer: 'https://accounts.google.com' }];
const der = decodeSignaturePem(commit.signature!);

function armor(bytes: Buffer): string {
  const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
  return ['-----BEGIN SIGNED MESSAGE-----', ...lines, '-----END SIGNED MESSAGE-----'].join('\n');
}

async function verify(payload: Uint8Array, signature: string) {
  return verifyGitsignCommitSignature({ payload, signature, trust, identities });
}

/** Where inside the DER a region's bytes start and end. */
function region(needle: Buffer): [number, number] {
  const at = der.indexOf(needle);
  expect(at).toBeGreaterThan(0);
  return [at, at + needle.length];
}

describe('gitsign mutations (never accept, never throw)', () => {
  it('the unmodified fixture verifies, and re-armoring it changes nothing', async () => {
    expect((await verify(commit.payload, commit.signature!)).ok).toBe(true);
    expect((await verify(commit.payload, armor(der))).ok).toBe(true);
  });

  it('flipping any single byte of the payload rejects', async () => {
    const codes = new Set<string>();
    for (let i = 0; i < commit.payload.length; i++) {
      const payload = Buffer.from(commit.payload);
      payload[i]! ^= 0xff;
      const result = await verify(payload, commit.signature!);
      expect(result.ok, `payload byte ${i}`).toBe(false);
      if (!result.ok) codes.add(result.code);
    }
    expect([...codes]).toEqual(['GITSIGN_PAYLOAD_DIGEST_MISMATCH']);
  });

  it('appending to or truncating the payload rejects', async () => {
    for (const payload of [Buffer.concat([commit.payload, Buffer.from('\n')]), commit.payload.subarray(0, -1), Buffer.alloc(0)]) {
      expect(await verify(payload, commit.signature!)).toMatchObject({ ok: false, code: 'GITSIGN_PAYLOAD_DIGEST_MISMATCH' });
    }
  });

  const cms = parseGitsignCms(der);
  const regions: Record<string, [number, number]> = {
    'signature value': region(cms.signature),
    'leaf certificate': region(cms.certificates[0]!),
    'signed attributes': region(cms.signedAttrsDer.subarray(2)),
    'embedded log entry': region(cms.unsignedAttrs.find((a) => a.oid === '1.3.6.1.4.1.57264.3.1')!.values[0]!.content),
  };
  for (const [name, [start, end]] of Object.entries(regions)) {
    it(`every single-byte change in the ${name} rejects`, async () => {
      let checked = 0;
      for (let i = start; i < end; i++) {
        for (const mask of [0x01]) {
          const mutated = Buffer.from(der);
          mutated[i]! ^= mask;
          const result = await verify(commit.payload, armor(mutated));
          expect(result.ok, `${name} byte ${i - start} ^ ${mask}`).toBe(false);
          checked++;
        }
      }
      expect(checked).toBe(end - start);
    });
  }

  it('every single-byte change anywhere in the CMS rejects', async () => {
    const accepted: number[] = [];
    for (let i = 0; i < der.length; i++) {
      const mutated = Buffer.from(der);
      mutated[i]! ^= 0x04;
      const result = await verify(commit.payload, armor(mutated));
      if (result.ok) accepted.push(i);
    }
    expect(accepted).toEqual([]);
  });

  it('every truncation of the CMS rejects', async () => {
    for (let len = 0; len < der.length; len += 3) {
      const result = await verify(commit.payload, armor(der.subarray(0, len)));
      expect(result.ok, `truncated to ${len}`).toBe(false);
    }
  });

  it('changing any base64 character of the armor rejects', async () => {
    const sig = commit.signature!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (let i = 0; i < sig.length; i += 5) {
      const c = sig[i]!;
      if (!alphabet.includes(c)) continue;
      const replaced = alphabet[(alphabet.indexOf(c) + 1) % 64]!;
      const result = await verify(commit.payload, sig.slice(0, i) + replaced + sig.slice(i + 1));
      expect(result.ok, `armor char ${i}`).toBe(false);
    }
  });

  it('garbage signatures are rejections, not exceptions', async () => {
    const garbage: unknown[] = [
      '',
      'hello',
      '-----BEGIN SIGNED MESSAGE-----\n-----END SIGNED MESSAGE-----',
      '-----BEGIN SIGNED MESSAGE-----\n!!!!\n-----END SIGNED MESSAGE-----',
      '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----',
      commit.signature!.replace('SIGNED MESSAGE-----\n', 'SIGNED MESSAGE-----\n\n'),
      'x'.repeat(1_000_000),
      null,
      undefined,
      42,
      { toString: () => commit.signature },
    ];
    for (let i = 0; i < 200; i++) garbage.push(armor(randomBytes(1 + ((i * 37) % 3000))));
    // Structurally plausible garbage: a valid outer SEQUENCE header around random bytes.
    for (let i = 0; i < 100; i++) {
      const body = randomBytes(200 + i);
      garbage.push(armor(Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body])));
    }
    for (const signature of garbage) {
      const result = await verifyGitsignCommitSignature({ payload: commit.payload, signature: signature as string, trust, identities });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.code).toMatch(/^GITSIGN_/);
    }
  });

  it('garbage payload, trust or policy values are rejections, not exceptions', async () => {
    const cases = [
      { payload: 'not bytes' as unknown as Uint8Array, signature: commit.signature!, trust, identities },
      { payload: commit.payload, signature: commit.signature!, trust: undefined as never, identities },
      { payload: commit.payload, signature: commit.signature!, trust, identities: [null] as never },
      { payload: commit.payload, signature: commit.signature!, trust, identities: 'billy' as never },
    ];
    for (const input of cases) {
      const result = await verifyGitsignCommitSignature(input);
      expect(result.ok).toBe(false);
    }
    for (const input of [null, undefined, {}, 'x']) {
      expect((await verifyGitsignCommitSignature(input as never)).ok).toBe(false);
    }
  });
});
