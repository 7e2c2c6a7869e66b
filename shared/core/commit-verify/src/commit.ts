import { CommitVerifyError } from './types.js';

/** A git commit object split into what was signed and the signature. */
export interface ParsedCommit {
  /** The exact bytes the signer signed: the raw commit with the signature header (and its continuation lines) removed. */
  payload: Buffer;
  /** The signature text (continuation lines joined with "\n"), or null for an unsigned commit. */
  signature: string | null;
  /** 'gpgsig' (SHA-1 repos) or 'gpgsig-sha256'. */
  signatureHeader: 'gpgsig' | 'gpgsig-sha256' | null;
  tree: string;
  parents: string[];
  author: Identity;
  committer: Identity;
  message: string;
}

export interface Identity {
  name: string;
  email: string;
  /** Seconds since the epoch, as recorded in the commit (claimed by the committer, not proven). */
  timestamp: number;
  timezone: string;
}

const IDENT = /^(.*) <([^<>]*)> (\d+) ([+-]\d{4})$/;

function parseIdentity(value: string, field: string): Identity {
  const m = IDENT.exec(value);
  if (!m) throw new CommitVerifyError('COMMIT_MALFORMED', `commit ${field} line is malformed`);
  return { name: m[1] ?? '', email: m[2] ?? '', timestamp: Number(m[3]), timezone: m[4] ?? '+0000' };
}

/**
 * Parses raw `git cat-file commit` bytes. Works on bytes, not strings, so the payload handed to a signature check is
 * byte-for-byte what git signed (non-UTF-8 messages included).
 */
export function parseCommit(raw: Uint8Array): ParsedCommit {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const headerEnd = buf.indexOf('\n\n');
  if (headerEnd < 0) throw new CommitVerifyError('COMMIT_MALFORMED', 'commit has no blank line between headers and message');
  const kept: Buffer[] = [];
  let signature: string[] | null = null;
  let signatureHeader: ParsedCommit['signatureHeader'] = null;
  let inSignature = false;
  let tree: string | undefined;
  const parents: string[] = [];
  let author: Identity | undefined;
  let committer: Identity | undefined;

  let pos = 0;
  while (pos <= headerEnd) {
    let nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl > headerEnd) nl = headerEnd;
    const line = buf.subarray(pos, nl);
    const lineWithNl = buf.subarray(pos, nl + 1);
    pos = nl + 1;
    if (line[0] === 0x20) {
      // Continuation line: belongs to the previous header.
      if (inSignature) signature!.push(line.subarray(1).toString('latin1'));
      else kept.push(lineWithNl);
      continue;
    }
    inSignature = false;
    const text = line.toString('utf8');
    const sp = text.indexOf(' ');
    const key = sp < 0 ? text : text.slice(0, sp);
    const value = sp < 0 ? '' : text.slice(sp + 1);
    if ((key === 'gpgsig' || key === 'gpgsig-sha256') && signature === null) {
      signature = [line.subarray(sp + 1).toString('latin1')];
      signatureHeader = key;
      inSignature = true;
      continue;
    }
    if (key === 'gpgsig' || key === 'gpgsig-sha256') {
      throw new CommitVerifyError('COMMIT_MALFORMED', 'commit carries more than one signature header');
    }
    kept.push(lineWithNl);
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parseIdentity(value, 'author');
    else if (key === 'committer') committer = parseIdentity(value, 'committer');
  }
  const rest = buf.subarray(headerEnd + 1);
  kept.push(rest);
  if (!tree || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(tree))
    throw new CommitVerifyError('COMMIT_MALFORMED', 'commit has no valid tree header');
  if (!author) throw new CommitVerifyError('COMMIT_MALFORMED', 'commit has no author');
  if (!committer) throw new CommitVerifyError('COMMIT_MALFORMED', 'commit has no committer');
  return {
    payload: Buffer.concat(kept),
    signature: signature ? signature.join('\n') : null,
    signatureHeader,
    tree,
    parents,
    author,
    committer,
    message: buf.subarray(headerEnd + 2).toString('utf8'),
  };
}

/** Which method a signature text belongs to, by its armor. */
export function detectMethod(signature: string): 'ssh' | 'gitsign' | 'gpg' | 'unknown' {
  const first = signature.trimStart().split('\n', 1)[0] ?? '';
  if (first.startsWith('-----BEGIN SSH SIGNATURE-----')) return 'ssh';
  if (
    first.startsWith('-----BEGIN SIGNED MESSAGE-----') ||
    first.startsWith('-----BEGIN PKCS7-----') ||
    first.startsWith('-----BEGIN CMS-----')
  )
    return 'gitsign';
  if (first.startsWith('-----BEGIN PGP SIGNATURE-----')) return 'gpg';
  return 'unknown';
}
