import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { CommitVerifyError } from '../types.js';
import { OPENPGP_CONFIG } from './config.js';
import { createGpgKeyring } from './keyring.js';
import { repairKeyQuickChecks } from './quick-check.js';
import { verifyGpgCommitSignature } from './verify.js';

// The web-flow key trap: openpgp.js rejects GitHub's 2017 key, gpg accepts it. These tests pin down the reason and
// show that the fix (quick-check.ts) lets exactly that defect through and nothing else.
const PGP_DIR = new URL('../../../../../../shared/fixtures/git-commits/pgp/', import.meta.url).pathname;
const WEB_FLOW_KEY = readFileSync(join(PGP_DIR, 'github-web-flow-2017.asc'), 'utf8');
const MANIFEST = JSON.parse(readFileSync(join(PGP_DIR, '..', 'manifest.json'), 'utf8')) as Record<string, { valid: unknown }>;
const VALID_SHAS = readdirSync(PGP_DIR)
  .filter((f) => f.endsWith('.commit') && MANIFEST[f.slice(0, -7)]?.valid === true)
  .map((f) => f.slice(0, -7));
const { enums } = openpgp;

function fixture(sha: string) {
  const p = parseCommit(readFileSync(join(PGP_DIR, `${sha}.commit`)));
  return { payload: p.payload, signature: p.signature! };
}

async function webFlowKeyBytes(): Promise<Uint8Array> {
  return (await openpgp.readKey({ armoredKey: WEB_FLOW_KEY })).write();
}

function armorKey(bytes: Uint8Array): string {
  return openpgp.armor(enums.armor.publicKey, bytes);
}

function indexOfBytes(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

async function expectKeyInvalid(armored: string): Promise<CommitVerifyError> {
  const error = await createGpgKeyring([armored]).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CommitVerifyError);
  expect((error as CommitVerifyError).code).toBe('GPG_KEY_INVALID');
  expect((error as CommitVerifyError).message).toContain('armoredKeys[0]');
  return error as CommitVerifyError;
}

describe('GitHub web-flow 2017 key: the reason openpgp.js rejects it', () => {
  it('stock openpgp.js finds no valid self-signature: "Signed digest did not match"', async () => {
    const key = await openpgp.readKey({ armoredKey: WEB_FLOW_KEY });
    await expect(key.getPrimaryUser()).rejects.toThrow(/Signed digest did not match/);
    await expect(key.getSigningKey()).rejects.toThrow(/Signed digest did not match/);
  });

  it('the only defect is the self-signature quick-check: stored 9901, SHA-256 digest starts 8477', async () => {
    const key = await openpgp.readKey({ armoredKey: WEB_FLOW_KEY });
    const selfSig = key.users[0]!.selfCertifications[0]!;
    expect(selfSig.version).toBe(4);
    expect(selfSig.hashAlgorithm).toBe(enums.hash.sha256);
    expect(Buffer.from(selfSig.signedHashValue!).toString('hex')).toBe('9901');
    // 0x99 0x01 are the first two bytes of the hashed key material (tag 0x99, key length 0x010d): the signer wrote the
    // start of the hash input instead of the start of the hash output.
    const writeForHash = (key.keyPacket as unknown as { writeForHash(version: number): Uint8Array }).writeForHash(4);
    expect(Buffer.from(writeForHash).subarray(0, 2).toString('hex')).toBe('9901');
    const repairs = await repairKeyQuickChecks(key);
    expect(repairs).toEqual([{ signatureType: enums.signature.certPositive, stored: '9901', computed: '8477' }]);
    // With only those two unsigned octets corrected, openpgp.js's full check (RSA over the digest) passes.
    const { user } = await key.getPrimaryUser(undefined, undefined, OPENPGP_CONFIG);
    expect(user.userID!.userID).toBe('GitHub (web-flow commit signing) <noreply@github.com>');
  });

  it('no openpgp.js config option is involved: our config equals the library defaults on every security setting', () => {
    const d = openpgp.config;
    expect(OPENPGP_CONFIG.minRSABits).toBe(2047);
    expect(OPENPGP_CONFIG.minRSABits).toBe(d.minRSABits);
    expect([...OPENPGP_CONFIG.rejectHashAlgorithms].sort()).toEqual([...d.rejectHashAlgorithms].sort());
    expect([...OPENPGP_CONFIG.rejectMessageHashAlgorithms].sort()).toEqual([...d.rejectMessageHashAlgorithms].sort());
    expect(OPENPGP_CONFIG.rejectMessageHashAlgorithms.has(enums.hash.sha1)).toBe(true);
    expect([...OPENPGP_CONFIG.rejectPublicKeyAlgorithms].sort()).toEqual([...d.rejectPublicKeyAlgorithms].sort());
    expect([...OPENPGP_CONFIG.rejectCurves].sort()).toEqual([...d.rejectCurves].sort());
    expect(OPENPGP_CONFIG.allowMissingKeyFlags).toBe(false);
    expect(OPENPGP_CONFIG.allowInsecureVerificationWithReformattedKeys).toBe(false);
    expect(OPENPGP_CONFIG.ignoreMalformedPackets).toBe(false);
  });
});

describe('the quick-check repair verifies what gpg verifies and nothing more', () => {
  it('every web-flow fixture commit verifies with the repaired key', async () => {
    expect(VALID_SHAS).toHaveLength(12);
    const keyring = await createGpgKeyring([WEB_FLOW_KEY]);
    for (const sha of VALID_SHAS) {
      expect(await verifyGpgCommitSignature({ ...fixture(sha), keyring }), sha).toMatchObject({ ok: true });
    }
  });

  it('a corrupted RSA value in the self-signature still makes the key unusable', async () => {
    const bytes = await webFlowKeyBytes();
    const broken = bytes.slice();
    broken[broken.length - 20]! ^= 0x01; // inside the signature MPI, the packet's last field
    const error = await expectKeyInvalid(armorKey(broken));
    expect(error.message).toMatch(/5de3e0509c47ea3cf04a42d34aee18f83afdeb23/);
  });

  it('a changed hashed subpacket (creation time) in the self-signature still makes the key unusable', async () => {
    const bytes = await webFlowKeyBytes();
    const at = indexOfBytes(bytes, [0x05, 0x02, 0x59, 0x94, 0x68, 0x41]); // subpacket 2: sig created 2017-08-16
    expect(at).toBeGreaterThan(0);
    const broken = bytes.slice();
    broken[at + 5]! ^= 0x01;
    await expectKeyInvalid(armorKey(broken));
  });

  it('a different public key under the same self-signature is unusable', async () => {
    const bytes = await webFlowKeyBytes();
    const broken = bytes.slice();
    broken[100]! ^= 0x01; // inside the RSA modulus
    await expectKeyInvalid(armorKey(broken));
  });

  it('commit (data) signatures are not repaired: a wrong quick-check there is still a rejection', async () => {
    const keyring = await createGpgKeyring([WEB_FLOW_KEY]);
    const { payload, signature } = fixture(VALID_SHAS[0]!);
    const parsed = await openpgp.readSignature({ armoredSignature: signature });
    const packet = parsed.packets[0]!;
    packet.signedHashValue = new Uint8Array([packet.signedHashValue![0]! ^ 0xff, packet.signedHashValue![1]!]);
    const result = await verifyGpgCommitSignature({ payload, signature: parsed.armor(), keyring });
    expect(result).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_INVALID' });
    if (!result.ok) expect(result.reason).toMatch(/Signed digest did not match/);
  });

  it('v6 key signatures are not repaired (RFC 9580 requires the check for v6)', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'V6', email: 'v6@example.com' }],
      config: { v6Keys: true },
      format: 'object',
    });
    const publicKey = privateKey.toPublic();
    expect(publicKey.keyPacket.version).toBe(6);
    expect(await createGpgKeyring([publicKey.armor()])).toBeDefined();
    const tampered = await openpgp.readKey({ armoredKey: publicKey.armor() });
    const sigs = [
      ...(tampered as unknown as { directSignatures: openpgp.SignaturePacket[] }).directSignatures,
      ...tampered.users.flatMap((u) => u.selfCertifications),
    ];
    expect(sigs.length).toBeGreaterThan(0);
    for (const s of sigs) s.signedHashValue = new Uint8Array([s.signedHashValue![0]! ^ 0xff, s.signedHashValue![1]!]);
    await expectKeyInvalid(tampered.armor());
  });

  it('a revocation with a wrong quick-check is honoured (stock openpgp.js would silently ignore it)', async () => {
    const { privateKey } = await openpgp.generateKey({
      userIDs: [{ email: 'rev@example.com' }],
      date: new Date(Date.now() - 3_600_000),
      format: 'object',
    });
    const payload = new TextEncoder().encode('tree 0000000000000000000000000000000000000000\n\nmsg\n');
    const signature = await openpgp.sign({
      message: await openpgp.createMessage({ binary: payload }),
      signingKeys: privateKey,
      detached: true,
      date: new Date(Date.now() - 60_000),
    });
    const { publicKey: revoked } = await openpgp.revokeKey({ key: privateKey, format: 'object' });
    const rev = revoked.revocationSignatures[0]!;
    rev.signedHashValue = new Uint8Array([rev.signedHashValue![0]! ^ 0xff, rev.signedHashValue![1]!]);
    const armored = revoked.armor();

    const stock = await openpgp.readKey({ armoredKey: armored });
    expect(await stock.isRevoked()).toBe(false);

    const keyring = await createGpgKeyring([armored]);
    const result = await verifyGpgCommitSignature({ payload, signature: signature as string, keyring });
    expect(result).toMatchObject({ ok: false, code: 'GPG_KEY_REVOKED' });
  });
});
