/**
 * Parser for git/OpenSSH `allowed_signers` files (ssh-keygen(1), ALLOWED SIGNERS):
 *
 *   principals [options] keytype base64-key [comment]
 *
 * It follows OpenSSH's sshsig.c/misc.c tokenisation (quoted principals, case-insensitive option keywords, quoted
 * option values with \" escapes, duplicate and ordering checks) with these deliberate differences:
 * - Times without a `Z`/`UTC` suffix are read as UTC. OpenSSH reads them in the verifying host's local time zone
 *   (and git passes the commit time in local time too), which would make a verdict depend on the host's TZ.
 * - Impossible calendar values (month 13, Feb 30, hour 24, second 60) are errors; strptime/mktime would normalise them.
 * - Every line is checked, and any bad line fails the whole file. OpenSSH only parses lines whose principals
 *   match, so a typo could otherwise sit unnoticed until it silently drops a signer.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { CommitVerifyError } from '../types.js';
import { isKeyTypeName, parseKeyText } from './keys.js';
import { splitPatternList } from './patterns.js';

export interface AllowedSigner {
  /** Principal patterns as listed (OpenSSH pattern-list entries: `*`, `?`, a leading `!` negates). */
  principals: string[];
  /** `cert-authority`: the key is a CA for certificates, never a signing key itself. */
  certAuthority: boolean;
  /** Namespace patterns from `namespaces="..."`; undefined means every namespace. */
  namespaces?: string[];
  /** `valid-after`: the key is valid at or after this instant. */
  validAfter?: Date;
  /** `valid-before`: the key is valid at or before this instant. */
  validBefore?: Date;
  /** Key type from the key blob, e.g. 'ssh-ed25519'. */
  keyType: string;
  /** Canonical SSH wire encoding of the public key; signature keys are compared against these bytes. */
  publicKey: Uint8Array;
  /** SHA256:... fingerprint of the key, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  comment?: string;
  /** Where the entry came from, for messages and the audit trail. */
  source: string;
  line: number;
}

class LineError extends BaseError<'ALLOWED_SIGNERS_INVALID'> {
  constructor(what: string) {
    super('ALLOWED_SIGNERS_INVALID', what);
  }
}

function fail(what: string): never {
  throw new LineError(what);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally suffixed `Z` or `UTC` (any case), as OpenSSH's
 * parse_absolute_time. Returns seconds since the epoch, or null when invalid. Without a suffix the time is UTC too.
 */
export function parseSshTime(text: string): number | null {
  let s = text;
  if (s.length > 1 && s.slice(-1).toUpperCase() === 'Z') s = s.slice(0, -1);
  else if (s.length > 3 && s.slice(-3).toUpperCase() === 'UTC') s = s.slice(0, -3);
  if (!/^\d+$/.test(s) || (s.length !== 8 && s.length !== 12 && s.length !== 14)) return null;
  const year = Number(s.slice(0, 4));
  const month = Number(s.slice(4, 6));
  const day = Number(s.slice(6, 8));
  const hour = s.length >= 12 ? Number(s.slice(8, 10)) : 0;
  const minute = s.length >= 12 ? Number(s.slice(10, 12)) : 0;
  const second = s.length === 14 ? Number(s.slice(12, 14)) : 0;
  if (month < 1 || month > 12) return null;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const maxDay = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day < 1 || day > maxDay || hour > 23 || minute > 59 || second > 59) return null;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC maps years 0..99 to 1900..1999; rebuild with setUTCFullYear so "00010101" means year 1.
  const d = new Date(ms);
  d.setUTCFullYear(year);
  return Math.floor(d.getTime() / 1000);
}

/** OpenSSH's opt_dequote: a double-quoted value where \" stands for a quote. Returns the value and the rest. */
function dequote(s: string, option: string): { value: string; rest: string } {
  if (s[0] !== '"') fail(`${option} value must be double-quoted`);
  let value = '';
  let i = 1;
  while (i < s.length && s[i] !== '"') {
    if (s[i] === '\\' && s[i + 1] === '"') i++;
    value += s[i];
    i++;
  }
  if (i >= s.length) fail(`${option} value is missing its closing quote`);
  return { value, rest: s.slice(i + 1) };
}

interface SignerOptions {
  certAuthority: boolean;
  namespaces?: string[];
  validAfter?: number;
  validBefore?: number;
}

/** OpenSSH's sshsigopt_parse over the options word (no unquoted whitespace inside). */
function parseOptions(opts: string): SignerOptions {
  const out: SignerOptions = { certAuthority: false };
  let s = opts;
  while (s.length > 0) {
    const lower = s.toLowerCase();
    if (lower.startsWith('cert-authority')) {
      out.certAuthority = true;
      s = s.slice('cert-authority'.length);
    } else if (lower.startsWith('namespaces=')) {
      if (out.namespaces !== undefined) fail('multiple "namespaces" options');
      const { value, rest } = dequote(s.slice('namespaces='.length), 'namespaces');
      out.namespaces = splitPatternList(value);
      s = rest;
    } else if (lower.startsWith('valid-after=') || lower.startsWith('valid-before=')) {
      const name = lower.startsWith('valid-after=') ? 'valid-after' : 'valid-before';
      const field = name === 'valid-after' ? 'validAfter' : 'validBefore';
      if (out[field] !== undefined) fail(`multiple "${name}" options`);
      const { value, rest } = dequote(s.slice(name.length + 1), name);
      const t = parseSshTime(value);
      // OpenSSH treats 0 as "unset" and stores times as unsigned, so the epoch and anything before it would be
      // ignored or wrap around; refuse them instead.
      if (t === null || t <= 0) fail(`invalid "${name}" time ${JSON.stringify(value)} (expected YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])`);
      out[field] = t;
      s = rest;
    }
    if (s.length === 0) break;
    if (s[0] !== ',') fail(`unknown option ${JSON.stringify(s.split(',')[0])}`);
    s = s.slice(1);
    if (s.length === 0) fail('options end with a comma');
  }
  if (out.validAfter !== undefined && out.validBefore !== undefined && out.validBefore <= out.validAfter) {
    fail('"valid-before" is not after "valid-after"');
  }
  return out;
}

/** Splits off the principals word like OpenSSH's strdelimw: whitespace-delimited, or with a quoted section. */
function takePrincipals(line: string): { principals: string; rest: string } {
  const m = /[ \t\r\n"]/.exec(line);
  if (!m) fail('missing key after principals');
  const at = m.index;
  if (line[at] !== '"') return { principals: line.slice(0, at), rest: line.slice(at + 1).replace(/^[ \t\r\n]+/, '') };
  const close = line.indexOf('"', at + 1);
  if (close < 0) fail('principals have an unterminated quote');
  const after = line.slice(close + 1);
  // OpenSSH would glue text after a closing quote onto the options/key field; refusing it is clearer.
  if (after.length > 0 && !/^[ \t\r\n]/.test(after)) fail('unexpected text right after the closing quote of the principals');
  return { principals: line.slice(0, at) + line.slice(at + 1, close), rest: after.replace(/^[ \t\r\n]+/, '') };
}

/** Ends the options word at the first whitespace outside double quotes (sshkey_advance_past_options). */
function optionsEnd(s: string): number {
  let quoted = false;
  let i = 0;
  for (; i < s.length && (quoted || (s[i] !== ' ' && s[i] !== '\t')); i++) {
    if (s[i] === '\\' && s[i + 1] === '"') i++;
    else if (s[i] === '"') quoted = !quoted;
  }
  if (quoted) fail('options have an unterminated quote');
  return i;
}

function parseLine(raw: string, source: string, lineNo: number): AllowedSigner | null {
  if (raw.includes('\0')) fail('line contains a NUL byte');
  const line = raw.replace(/^[ \t\r\n]+/, '').replace(/[\r\n]+$/, '');
  if (line === '' || line.startsWith('#')) return null;

  const { principals, rest } = takePrincipals(line);
  if (principals === '') fail('empty principals');
  if (rest === '') fail('missing key after principals');

  let options: SignerOptions = { certAuthority: false };
  let keyText = rest;
  const firstWord = /^[^ \t]*/.exec(rest)![0];
  if (!isKeyTypeName(firstWord)) {
    const end = optionsEnd(rest);
    options = parseOptions(rest.slice(0, end));
    keyText = rest.slice(end).replace(/^[ \t]+/, '');
    if (keyText === '') fail('missing key after options');
  }
  let parsed: ReturnType<typeof parseKeyText>;
  try {
    parsed = parseKeyText(keyText);
  } catch (e) {
    fail(`invalid key: ${(e as Error).message}`);
  }
  const signer: AllowedSigner = {
    principals: splitPatternList(principals),
    certAuthority: options.certAuthority,
    keyType: parsed.key.type,
    publicKey: parsed.key.blob,
    fingerprint: parsed.key.fingerprint,
    source,
    line: lineNo,
  };
  if (options.namespaces !== undefined) signer.namespaces = options.namespaces;
  if (options.validAfter !== undefined) signer.validAfter = new Date(options.validAfter * 1000);
  if (options.validBefore !== undefined) signer.validBefore = new Date(options.validBefore * 1000);
  if (parsed.comment !== '') signer.comment = parsed.comment;
  return signer;
}

/**
 * Parses an allowed_signers file. Blank lines and `#` comments are skipped; any other line that is not a valid entry
 * throws CommitVerifyError('ALLOWED_SIGNERS_INVALID', '<source>:<line>: <what is wrong>').
 */
export function parseAllowedSigners(text: string, source = 'allowed_signers'): AllowedSigner[] {
  const out: AllowedSigner[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    try {
      const signer = parseLine(lines[i]!, source, i + 1);
      if (signer) out.push(signer);
    } catch (e) {
      if (e instanceof LineError) throw new CommitVerifyError('ALLOWED_SIGNERS_INVALID', `${source}:${i + 1}: ${e.message}`);
      throw e;
    }
  }
  return out;
}
