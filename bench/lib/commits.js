// Signed git commits made in-process, fast enough to make thousands for a benchmark: an Ed25519 key in Node, SSHSIG
// signatures (the format `ssh-keygen -Y sign` writes and `git verify-commit` checks), and commit objects written as
// loose objects straight into a repository's object store. `checkWithGit()` proves git itself accepts them.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (b) => Buffer.concat([u32(Buffer.byteLength(b)), Buffer.from(b)]);

/** An Ed25519 signing key as git's SSH signing uses it. */
export function createSshKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]);
  const publicLine = `ssh-ed25519 ${blob.toString('base64')}`;
  return {
    privateKey,
    blob,
    publicLine,
    allowedSignersLine: (email) => `${email} namespaces="git" ${publicLine}`,
  };
}

/** `ssh-keygen -Y sign -n git` output for `message`, armored. */
export function sshsig(key, message, namespace = 'git') {
  const hash = createHash('sha512').update(message).digest();
  const toSign = Buffer.concat([Buffer.from('SSHSIG'), sshString(namespace), sshString(''), sshString('sha512'), sshString(hash)]);
  const sig = sign(null, toSign, key.privateKey);
  const blob = Buffer.concat([
    Buffer.from('SSHSIG'),
    u32(1),
    sshString(key.blob),
    sshString(namespace),
    sshString(''),
    sshString('sha512'),
    sshString(Buffer.concat([sshString('ssh-ed25519'), sshString(sig)])),
  ]);
  const b64 = blob.toString('base64').match(/.{1,70}/g).join('\n');
  return `-----BEGIN SSH SIGNATURE-----\n${b64}\n-----END SSH SIGNATURE-----\n`;
}

/** Writes one loose object; returns its sha1. */
export function writeObject(gitDir, type, body) {
  const data = Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body]);
  const sha = createHash('sha1').update(data).digest('hex');
  const dir = join(gitDir, 'objects', sha.slice(0, 2));
  const file = join(dir, sha.slice(2));
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, deflateSync(data, { level: 1 }));
  }
  return sha;
}

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/**
 * A commit object, SSH-signed by `key` unless key is null (the signature goes in a `gpgsig` header over the rest of
 * the object, exactly as `git commit -S` with gpg.format=ssh stores it). Returns { sha, raw }.
 */
export function makeCommit(gitDir, { tree = EMPTY_TREE, parents = [], email = 'dev@example.com', name = 'Bench Dev', time, message, key }) {
  const ts = `${time ?? Math.floor(Date.now() / 1000)} +0000`;
  const head = [`tree ${tree}`, ...parents.map((p) => `parent ${p}`), `author ${name} <${email}> ${ts}`, `committer ${name} <${email}> ${ts}`].join('\n');
  const payload = `${head}\n\n${message}\n`;
  let text = payload;
  if (key) {
    const sig = sshsig(key, Buffer.from(payload)).replace(/\n$/, '').split('\n').join('\n ');
    text = `${head}\ngpgsig ${sig}\n\n${message}\n`;
  }
  const raw = Buffer.from(text);
  return { sha: writeObject(gitDir, 'commit', raw), raw };
}

/** Makes sure the empty tree exists as a real object (pack-objects needs it to serve fetches). */
export function writeEmptyTree(gitDir) {
  return writeObject(gitDir, 'tree', Buffer.alloc(0));
}
