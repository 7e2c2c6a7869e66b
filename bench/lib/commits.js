// Signed git commits made in-process, fast enough to make thousands for a benchmark: an Ed25519 key in Node, SSHSIG
// signatures (the format `ssh-keygen -Y sign` writes and `git verify-commit` checks), and commit objects written as
// loose objects straight into a repository's object store. `checkWithGit()` proves git itself accepts them.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (b) => Buffer.concat([u32(Buffer.byteLength(b)), Buffer.from(b)]);

/**
 * An Ed25519 signing key as git's SSH signing uses it; `{ sk: true }` makes it a software sk-ssh-ed25519 security key
 * (application "ssh:"), signing PROTOCOL.u2f's layout with the user-present flag. `withCertificate(blob)` returns the
 * same key signing through an OpenSSH certificate (the certificate blob goes into the SSHSIG).
 */
export function createSshKey({ sk = false } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const type = sk ? 'sk-ssh-ed25519@openssh.com' : 'ssh-ed25519';
  const blob = Buffer.concat([sshString(type), sshString(raw), ...(sk ? [sshString('ssh:')] : [])]);
  const publicLine = `${type} ${blob.toString('base64')}`;
  const key = {
    privateKey,
    type,
    application: sk ? 'ssh:' : undefined,
    blob,
    publicLine,
    allowedSignersLine: (email) => `${email} namespaces="git" ${publicLine}`,
  };
  return { ...key, withCertificate: (certBlob) => ({ ...key, blob: certBlob }) };
}

/** The signature blob inside an SSHSIG: plain Ed25519, or a security key's over SHA256(app) || flags || counter || SHA256(data). */
function signatureBlob(key, toSign) {
  if (!key.application) return Buffer.concat([sshString('ssh-ed25519'), sshString(sign(null, toSign, key.privateKey))]);
  const flags = Buffer.from([0x01]);
  const counter = u32(1);
  const sha256 = (b) => createHash('sha256').update(b).digest();
  const tokenSigned = Buffer.concat([sha256(key.application), flags, counter, sha256(toSign)]);
  return Buffer.concat([sshString(key.type), sshString(sign(null, tokenSigned, key.privateKey)), flags, counter]);
}

/** `ssh-keygen -Y sign -n git` output for `message`, armored. */
export function sshsig(key, message, namespace = 'git') {
  const hash = createHash('sha512').update(message).digest();
  const toSign = Buffer.concat([Buffer.from('SSHSIG'), sshString(namespace), sshString(''), sshString('sha512'), sshString(hash)]);
  const blob = Buffer.concat([
    Buffer.from('SSHSIG'),
    u32(1),
    sshString(key.blob),
    sshString(namespace),
    sshString(''),
    sshString('sha512'),
    sshString(signatureBlob(key, toSign)),
  ]);
  const b64 = blob
    .toString('base64')
    .match(/.{1,70}/g)
    .join('\n');
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
  const head = [
    `tree ${tree}`,
    ...parents.map((p) => `parent ${p}`),
    `author ${name} <${email}> ${ts}`,
    `committer ${name} <${email}> ${ts}`,
  ].join('\n');
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

/** A bare repository at `<dir>/remote.git` on branch main, holding the empty tree: the benchmarks' git host. */
export function createBareRemote(dir) {
  const remote = join(dir, 'remote.git');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', remote]);
  writeEmptyTree(remote);
  return remote;
}

/** Points `refs/heads/<branch>` of a bare repository at `sha` (a loose ref, as git writes it). */
export function setBranch(gitDir, branch, sha) {
  writeFileSync(join(gitDir, 'refs', 'heads', branch), `${sha}\n`);
}

/**
 * Counts the git processes started from now on by services whose $HOME is `gitHome`: git reads $HOME/.gitconfig at
 * every start, so a trace2 target written there covers exactly the window until `stopGitTrace`.
 */
export function startGitTrace(gitHome, traceDir) {
  for (const f of readdirSync(traceDir)) rmSync(join(traceDir, f), { force: true });
  writeFileSync(join(gitHome, '.gitconfig'), `[trace2]\n\teventTarget = ${traceDir}\n`);
}

export function stopGitTrace(gitHome) {
  rmSync(join(gitHome, '.gitconfig'), { force: true });
}

/** Git processes whose trace2 files are in `traceDir`, by subcommand (upload-pack runs as `git-upload-pack <dir>`). */
export function countTracedGit(traceDir) {
  const bySub = {};
  let total = 0;
  for (const f of readdirSync(traceDir)) {
    const start = readFileSync(join(traceDir, f), 'utf8')
      .split('\n')
      .find((l) => l.includes('"event":"start"'));
    if (!start) continue;
    const argv = JSON.parse(start).argv ?? [];
    const sub = /upload-pack/.test(argv[0] ?? '')
      ? 'upload-pack'
      : (argv.slice(1).find((a) => !a.startsWith('-') && !a.includes('=')) ?? '?');
    bySub[sub] = (bySub[sub] ?? 0) + 1;
    total += 1;
  }
  return { bySub, total };
}
