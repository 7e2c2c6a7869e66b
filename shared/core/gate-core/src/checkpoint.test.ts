import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkpointOrigin, formatCheckpoint, openCheckpoint, parseSigningKey, parseVerifierKey } from './checkpoint.js';

// Known answers of the signed-note reference implementation (golang.org/x/mod/sumdb/note) and the C2SP spec: our
// notes must open with other tools and theirs with ours.
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;
const ROOT = 'ab'.repeat(32);

function pemPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    priv: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    pub: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

describe('signed-note keys and signatures', () => {
  it('signs exactly as the Go reference implementation does', () => {
    const signer = parseSigningKey(GO_SKEY, 'test');
    expect(signer.verifier.text).toBe(GO_VKEY);
    expect(signer.sign(GO_TEXT)).toBe(GO_NOTE);
  });

  it('parses verifier keys in the note format, with a + inside the base64', () => {
    const v = parseVerifierKey(GO_VKEY, 'test');
    expect(v).toMatchObject({ name: 'PeterNeumann', text: GO_VKEY });
    expect(v.keyHash.toString('hex')).toBe('c74f20a3');
    expect(parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k', 'spec').name).toBe('example.com/foo');
  });

  it('accepts PKCS#8 / SPKI PEM keys under the name gitops-gate-audit', () => {
    const { priv, pub } = pemPair();
    const signer = parseSigningKey(priv, 'AUDIT_SIGNING_KEY_FILE');
    expect(signer.verifier.name).toBe('gitops-gate-audit');
    expect(parseVerifierKey(pub, 'pub').text).toBe(signer.verifier.text);
  });

  it.each([
    ['garbage', 'hello'],
    ['a key hash that does not match', GO_SKEY.replace('c74f20a3', 'c74f20a4')],
    ['a non-Ed25519 algorithm byte', 'PRIVATE+KEY+x+00000000+AgEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'],
    ['an RSA key', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
  ])('rejects %s naming the source', (_what, text) => {
    expect(() => parseSigningKey(text, 'AUDIT_SIGNING_KEY_FILE')).toThrow(/^AUDIT_SIGNING_KEY_FILE: /);
  });

  it('rejects verifier keys with a wrong hash or a bad name', () => {
    expect(() => parseVerifierKey(GO_VKEY.replace('c74f20a3', '00000000'), 'k.pub')).toThrow(/k.pub: key hash does not match/);
    expect(() => parseVerifierKey('+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', 'k.pub')).toThrow(/invalid key name/);
  });
});

describe('checkpoints', () => {
  const signer = parseSigningKey(pemPair().priv, 'k');
  const origin = checkpointOrigin('prod', 'argocd/shop');
  const note = signer.sign(formatCheckpoint({ origin, size: 7, rootHash: ROOT }));

  it('is the C2SP checkpoint body: origin, tree size, base64 root hash', () => {
    expect(note.split('\n').slice(0, 4)).toEqual(['gitops-gate/prod/argocd/shop', '7', Buffer.from(ROOT, 'hex').toString('base64'), '']);
    expect(note).toMatch(/\n\n\u2014 gitops-gate-audit [A-Za-z0-9+/]+=*\n$/);
  });

  it('opens with the right key; key rotation: any of several trusted keys will do', () => {
    const other = parseSigningKey(pemPair().priv, 'k2').verifier;
    expect(openCheckpoint(note, [other, signer.verifier])).toEqual({ origin, size: 7, rootHash: ROOT, signedBy: [signer.verifier.text] });
  });

  it('attacker: a checkpoint signed by an unknown key is refused', () => {
    const mallory = parseSigningKey(pemPair().priv, 'm');
    const forged = mallory.sign(formatCheckpoint({ origin, size: 7, rootHash: 'cd'.repeat(32) }));
    expect(() => openCheckpoint(forged, [signer.verifier])).toThrow(/signed by none of the trusted keys/);
  });

  it('attacker: an altered size or root hash breaks the signature', () => {
    expect(() => openCheckpoint(note.replace('\n7\n', '\n8\n'), [signer.verifier])).toThrow(/does not verify/);
    const otherRoot = Buffer.from('cd'.repeat(32), 'hex').toString('base64');
    expect(() => openCheckpoint(note.replace(Buffer.from(ROOT, 'hex').toString('base64'), otherRoot), [signer.verifier])).toThrow(
      /does not verify/,
    );
  });

  it.each([
    ['no signature block', 'gitops-gate/x\n1\nAAAA\n'],
    ['a malformed signature line', `${formatCheckpoint({ origin, size: 1, rootHash: ROOT })}\n- gitops-gate-audit AAAA\n`],
    ['a signed text that is not a checkpoint', signer.sign('just text\n')],
  ])('rejects %s', (_what, text) => {
    expect(() => openCheckpoint(text, [signer.verifier])).toThrow();
  });
});
