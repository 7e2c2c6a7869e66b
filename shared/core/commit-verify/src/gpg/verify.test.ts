import * as openpgp from 'openpgp';
import type { PrivateKey, SignaturePacket } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { CommitVerifyError } from '../types.js';
import { createGpgKeyring, type GpgKeyring } from './keyring.js';
import { normalizeGpgFingerprint, verifyGpgCommitSignature } from './verify.js';

// Edge cases with keys and signatures made by openpgp.js, where a test needs a signature gpg would not produce
// (expiring signatures, critical notations, backdated or v6 signatures, crafted packet types).

const { enums } = openpgp;
const HOUR = 3_600_000;
const T0 = new Date(Date.UTC(2025, 0, 1));
const at = (hours: number) => new Date(T0.getTime() + hours * HOUR);
const PAYLOAD = new TextEncoder().encode(
  'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@example.com> 1735689600 +0000\ncommitter A <a@example.com> 1735689600 +0000\n\nmsg\n',
);

async function literal(payload: Uint8Array) {
  const msg = await openpgp.createMessage({ binary: payload });
  return msg.packets.findPacket(enums.packet.literalData)!;
}

function armorPackets(packets: SignaturePacket[]): string {
  const list = new openpgp.PacketList<SignaturePacket>();
  list.push(...packets);
  return new openpgp.Signature(list).armor();
}

/** A detached signature made by hand, so that any packet field can be chosen. */
async function craft(
  keyPacket: openpgp.SecretKeyPacket | openpgp.SecretSubkeyPacket,
  date: Date,
  props: Partial<Record<keyof SignaturePacket, unknown>> = {},
  payload: Uint8Array = PAYLOAD,
): Promise<SignaturePacket> {
  const sig = new openpgp.SignaturePacket();
  Object.assign(sig, { signatureType: enums.signature.binary, hashAlgorithm: enums.hash.sha256, ...props });
  sig.publicKeyAlgorithm = keyPacket.algorithm;
  // `sign` takes a config at runtime (and needs it) although its typings stop at `detached`.
  type SignWithConfig = (key: unknown, data: unknown, date: Date, detached: boolean, config: openpgp.Config) => Promise<void>;
  await (sig.sign as unknown as SignWithConfig).call(sig, keyPacket, await literal(payload), date, true, openpgp.config);
  return sig;
}

async function sign(key: PrivateKey, date: Date, payload: Uint8Array = PAYLOAD): Promise<string> {
  const message = await openpgp.createMessage({ binary: payload });
  return (await openpgp.sign({ message, signingKeys: key, detached: true, date })) as string;
}

async function keyringOf(...keys: openpgp.Key[]): Promise<GpgKeyring> {
  return createGpgKeyring(keys.map((k) => k.toPublic().armor()));
}

describe('openpgp.js-made keys', () => {
  let alice: PrivateKey;
  let bob: PrivateKey;
  let ring: GpgKeyring;

  beforeAll(async () => {
    alice = (await openpgp.generateKey({ userIDs: [{ name: 'Alice', email: 'alice@example.com' }], date: T0, format: 'object' }))
      .privateKey;
    bob = (await openpgp.generateKey({ userIDs: [{ name: 'Bob', email: 'bob@example.com' }], date: T0, format: 'object' })).privateKey;
    ring = await keyringOf(alice, bob);
  });

  it('accepts a valid signature and reports who and when', async () => {
    const result = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: await sign(alice, at(1)), keyring: ring });
    expect(result).toEqual({
      ok: true,
      method: 'gpg',
      signer: { identity: 'Alice <alice@example.com>', keyFingerprint: alice.getFingerprint(), signedAt: at(1).toISOString() },
      evidence: expect.arrayContaining([expect.stringContaining('no allowedFingerprints given')]),
    });
  });

  it('rejects a signature over other bytes', async () => {
    const other = new TextEncoder().encode('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nother\n');
    const result = await verifyGpgCommitSignature({ payload: other, signature: await sign(alice, at(1)), keyring: ring });
    expect(result).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_INVALID' });
  });

  it('an unsigned (unhashed) issuer key id cannot redirect a signature to another key', async () => {
    // Bob signs; the packet is then relabelled with Alice's key id in the unhashed area. Only the hashed issuer
    // fingerprint counts, so the signature is still Bob's, and reported as Bob's.
    const sig = await craft(bob.keyPacket as openpgp.SecretKeyPacket, at(1));
    sig.issuerKeyID = alice.getKeyID();
    const armored = armorPackets([sig]);
    expect((await openpgp.readSignature({ armoredSignature: armored })).packets[0]!.issuerKeyID.toHex()).toBe(bob.getKeyID().toHex());
    const result = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: armored, keyring: ring });
    expect(result).toMatchObject({ ok: true, signer: { keyFingerprint: bob.getFingerprint() } });
    const onlyAlice = await verifyGpgCommitSignature({
      payload: PAYLOAD,
      signature: armored,
      keyring: ring,
      allowedFingerprints: [alice.getFingerprint()],
    });
    expect(onlyAlice).toMatchObject({ ok: false, code: 'GPG_SIGNER_NOT_ALLOWED' });
  });

  it('time: future signatures, expired signatures, signatures older than the key', async () => {
    const future = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: await sign(alice, at(5)), keyring: ring, now: at(4) });
    expect(future).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_FROM_FUTURE' });

    const expiring = armorPackets([
      await craft(alice.keyPacket as openpgp.SecretKeyPacket, at(1), { signatureExpirationTime: 3600, signatureNeverExpires: false }),
    ]);
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD, signature: expiring, keyring: ring, now: at(1.5) })).toMatchObject({
      ok: true,
    });
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD, signature: expiring, keyring: ring, now: at(2) })).toMatchObject({
      ok: false,
      code: 'GPG_SIGNATURE_EXPIRED',
    });

    const backdated = armorPackets([await craft(alice.keyPacket as openpgp.SecretKeyPacket, at(-1))]);
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD, signature: backdated, keyring: ring })).toMatchObject({
      ok: false,
      code: 'GPG_KEY_NOT_YET_VALID',
    });
  });

  it('rejects unknown critical notations (SHA-1 is covered with gpg-made signatures)', async () => {
    const notation = { name: 'must-understand@example.com', value: new TextEncoder().encode('x'), humanReadable: true, critical: true };
    const critical = armorPackets([await craft(alice.keyPacket as openpgp.SecretKeyPacket, at(1), { rawNotations: [notation] })]);
    const result = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: critical, keyring: ring });
    expect(result).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_INVALID' });
    if (!result.ok) expect(result.reason).toMatch(/critical notation/i);
  });

  it('accepts only document signatures, exactly one', async () => {
    const cert = alice.users[0]!.selfCertifications[0]!;
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD, signature: armorPackets([cert]), keyring: ring })).toMatchObject({
      ok: false,
      code: 'GPG_SIGNATURE_MALFORMED',
    });
    const standalone = armorPackets([
      await craft(alice.keyPacket as openpgp.SecretKeyPacket, at(1), { signatureType: enums.signature.standalone }),
    ]);
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD, signature: standalone, keyring: ring })).toMatchObject({
      ok: false,
      code: 'GPG_SIGNATURE_MALFORMED',
    });
    const a = await craft(alice.keyPacket as openpgp.SecretKeyPacket, at(1));
    const b = await craft(bob.keyPacket as openpgp.SecretKeyPacket, at(1));
    const two = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: armorPackets([a, b]), keyring: ring });
    expect(two).toMatchObject({ ok: false, code: 'GPG_SIGNATURE_MALFORMED' });
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD, signature: armorPackets([a]), keyring: ring })).toMatchObject({ ok: true });
  });

  it('revocation is final whatever its reason and date (stricter than openpgp.js for "retired")', async () => {
    const signature = await sign(alice, at(1));
    const { publicKey: retired } = await openpgp.revokeKey({
      key: alice,
      reasonForRevocation: { flag: enums.reasonForRevocation.keyRetired, string: 'moved to a new key' },
      date: at(10),
      format: 'object',
    });
    // Stock openpgp.js lets a signature made before a soft revocation through.
    const stock = await openpgp.verify({
      message: await openpgp.createMessage({ binary: PAYLOAD }),
      signature: await openpgp.readSignature({ armoredSignature: signature }),
      verificationKeys: retired,
      date: at(11),
    });
    await expect(stock.signatures[0]!.verified).resolves.toBe(true);
    const result = await verifyGpgCommitSignature({ payload: PAYLOAD, signature, keyring: await keyringOf(retired), now: at(11) });
    expect(result).toMatchObject({ ok: false, code: 'GPG_KEY_REVOKED' });
    if (!result.ok) expect(result.reason).toMatch(/keyRetired.*moved to a new key/);
  });

  it('subkeys: resolve to the primary; a revoked or expired signing subkey is rejected', async () => {
    const withSub = await alice.addSubkey({ sign: true, date: at(1) });
    const subkey = withSub.subkeys.find((s) => s.getCreationTime().getTime() === at(1).getTime())!;
    const sig = armorPackets([await craft(subkey.keyPacket as openpgp.SecretSubkeyPacket, at(2))]);
    const ok = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: sig, keyring: await keyringOf(withSub) });
    expect(ok).toMatchObject({ ok: true, signer: { keyFingerprint: alice.getFingerprint() } });

    const revokedSub = await subkey.revoke(withSub.keyPacket as openpgp.SecretKeyPacket, undefined, at(3));
    const revokedKey = await openpgp.readKey({ armoredKey: withSub.toPublic().armor() });
    revokedKey.subkeys
      .find((s) => s.getFingerprint() === subkey.getFingerprint())!
      .revocationSignatures.push(...revokedSub.revocationSignatures);
    const revoked = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: sig, keyring: await keyringOf(revokedKey) });
    expect(revoked).toMatchObject({ ok: false, code: 'GPG_KEY_REVOKED' });

    const shortSub = await alice.addSubkey({ sign: true, date: at(1), keyExpirationTime: 1800 });
    const short = shortSub.subkeys.find(
      (s) => s.getFingerprint() !== subkey.getFingerprint() && s.getCreationTime().getTime() === at(1).getTime(),
    )!;
    const late = armorPackets([await craft(short.keyPacket as openpgp.SecretSubkeyPacket, at(2))]);
    const expired = await verifyGpgCommitSignature({ payload: PAYLOAD, signature: late, keyring: await keyringOf(shortSub) });
    expect(expired).toMatchObject({ ok: false, code: 'GPG_KEY_EXPIRED' });
  });

  it('v6 keys and signatures verify, with 64-hex-digit fingerprints', async () => {
    const { privateKey: v6 } = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'Six', email: 'six@example.com' }],
      date: T0,
      config: { v6Keys: true },
      format: 'object',
    });
    const fpr = v6.getFingerprint();
    expect(fpr).toMatch(/^[0-9a-f]{64}$/);
    const signature = await sign(v6, at(1));
    const keyring = await keyringOf(v6, alice);
    expect(
      await verifyGpgCommitSignature({ payload: PAYLOAD, signature, keyring, allowedFingerprints: [fpr.toUpperCase()] }),
    ).toMatchObject({
      ok: true,
      signer: { keyFingerprint: fpr, identity: 'Six <six@example.com>' },
    });
    expect(await verifyGpgCommitSignature({ payload: PAYLOAD.subarray(1), signature, keyring })).toMatchObject({
      ok: false,
      code: 'GPG_SIGNATURE_INVALID',
    });
  });
});

describe('input handling never throws', () => {
  let alice: PrivateKey;
  let ring: GpgKeyring;
  let good: string;

  beforeAll(async () => {
    alice = (await openpgp.generateKey({ userIDs: [{ email: 'alice@example.com' }], date: T0, format: 'object' })).privateKey;
    ring = await keyringOf(alice);
    good = await sign(alice, at(1));
  });

  it.each([
    ['null input', null, 'GPG_INPUT_INVALID'],
    ['payload as string', { payload: 'x', signature: '', keyring: null }, 'GPG_INPUT_INVALID'],
    [
      'forged keyring',
      { payload: PAYLOAD, signature: '', keyring: { byFingerprint: new Map(), byKeyId: new Map() } },
      'GPG_KEYRING_INVALID',
    ],
  ])('%s', async (_name, input, code) => {
    expect(await verifyGpgCommitSignature(input as never)).toMatchObject({ ok: false, method: 'gpg', code });
  });

  it('rejects malformed signature text, policy and clock', async () => {
    const base = { payload: PAYLOAD, keyring: ring };
    const cases: [unknown, string][] = [
      [undefined, 'GPG_SIGNATURE_MALFORMED'],
      ['', 'GPG_SIGNATURE_MALFORMED'],
      ['-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n', 'GPG_SIGNATURE_MALFORMED'],
      [alice.toPublic().armor(), 'GPG_SIGNATURE_MALFORMED'],
      [good.replace(/\n=.*\n/, '\n').slice(0, 120) + '\n-----END PGP SIGNATURE-----\n', 'GPG_SIGNATURE_MALFORMED'],
      ['x'.repeat(100_000), 'GPG_SIGNATURE_MALFORMED'],
    ];
    for (const [signature, code] of cases) {
      expect(await verifyGpgCommitSignature({ ...base, signature } as never), String(signature).slice(0, 40)).toMatchObject({
        ok: false,
        code,
      });
    }
    expect(await verifyGpgCommitSignature({ ...base, signature: good, now: new Date(NaN) })).toMatchObject({
      ok: false,
      code: 'GPG_INPUT_INVALID',
    });
    const keyId = alice.getKeyID().toHex();
    expect(await verifyGpgCommitSignature({ ...base, signature: good, allowedFingerprints: [keyId] })).toMatchObject({
      ok: false,
      code: 'GPG_ALLOWED_FINGERPRINT_INVALID',
    });
    expect(await verifyGpgCommitSignature({ ...base, signature: good, allowedFingerprints: 'x' as never })).toMatchObject({
      ok: false,
      code: 'GPG_ALLOWED_FINGERPRINT_INVALID',
    });
    expect(await verifyGpgCommitSignature({ ...base, signature: good })).toMatchObject({ ok: true });
  });

  it('a throwing input accessor becomes a rejection', async () => {
    const input = Object.defineProperty({}, 'payload', {
      get() {
        throw new Error('boom');
      },
    });
    expect(await verifyGpgCommitSignature(input as never)).toMatchObject({ ok: false, code: 'GPG_VERIFY_FAILED' });
  });
});

describe('normalizeGpgFingerprint', () => {
  it('accepts full fingerprints in any case and spacing, nothing else', () => {
    expect(normalizeGpgFingerprint('5DE3 E050 9C47 EA3C F04A  42D3 4AEE 18F8 3AFD EB23')).toBe('5de3e0509c47ea3cf04a42d34aee18f83afdeb23');
    expect(normalizeGpgFingerprint('a'.repeat(64))).toBe('a'.repeat(64));
    for (const bad of ['4AEE18F83AFDEB23', '0x5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23', 'g'.repeat(40), 'a'.repeat(41), '']) {
      expect(normalizeGpgFingerprint(bad), bad).toBeNull();
    }
  });
});

describe('createGpgKeyring', () => {
  let alice: PrivateKey;
  beforeAll(async () => {
    alice = (await openpgp.generateKey({ userIDs: [{ email: 'alice@example.com' }], date: T0, format: 'object' })).privateKey;
  });

  async function loadError(input: unknown): Promise<CommitVerifyError> {
    const e = await createGpgKeyring(input as string[]).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(CommitVerifyError);
    expect((e as CommitVerifyError).code).toBe('GPG_KEY_INVALID');
    return e as CommitVerifyError;
  }

  it('names the bad input', async () => {
    const pub = alice.toPublic().armor();
    expect((await loadError([pub, 'not a key'])).message).toMatch(/^armoredKeys\[1\]: is not a readable/);
    expect((await loadError([pub, ''])).message).toMatch(/^armoredKeys\[1\]/);
    expect((await loadError([alice.armor()])).message).toMatch(/^armoredKeys\[0\]: .*secret key/);
    await loadError('x');
    await loadError([42]);
  });

  it('refuses weak primary keys at load time', async () => {
    const { privateKey: weak } = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 1024,
      userIDs: [{ email: 'weak@example.com' }],
      config: { minRSABits: 1024 },
      format: 'object',
    });
    expect((await loadError([weak.toPublic().armor()])).message).toMatch(/1024-bit RSA/);
  });

  it('indexes keys by fingerprint and by every key id, merges duplicates, reads several keys from one text', async () => {
    const { privateKey: bob } = await openpgp.generateKey({ userIDs: [{ email: 'bob@example.com' }], date: T0, format: 'object' });
    const both = openpgp.armor(enums.armor.publicKey, new Uint8Array([...alice.toPublic().write(), ...bob.toPublic().write()]));
    const ring = await createGpgKeyring([both, alice.toPublic().armor()]);
    expect([...ring.byFingerprint.keys()].sort()).toEqual([alice.getFingerprint(), bob.getFingerprint()].sort());
    for (const k of [...alice.getKeys(), ...bob.getKeys()]) {
      expect(ring.byKeyId.get(k.getKeyID().toHex())).toHaveLength(1);
    }
    expect(await createGpgKeyring([])).toMatchObject({ byFingerprint: new Map() });
  });
});
