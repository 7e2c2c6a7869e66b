/**
 * OpenSSH pattern lists (ssh_config(5) PATTERNS), as used for allowed_signers principals and namespaces:
 * comma-separated patterns, `*` matches any run of characters, `?` exactly one, a leading `!` negates, and a
 * negated match vetoes the whole list. Matching is case-sensitive (OpenSSH calls it with dolower=0 here).
 */

import { globMatch } from '@gitops-gate/contracts/glob';

/** OpenSSH copies each sub-pattern into a 1024-byte buffer and treats a longer one as "no match" for the list. */
const MAX_SUBPATTERN = 1023;

/** Glob match of the whole string (`*` any run, `?` one character): the project's one glob matcher. */
export function matchPattern(s: string, pattern: string): boolean {
  return globMatch(pattern, s);
}

/** Splits a pattern list exactly as OpenSSH walks it: a trailing comma adds no empty pattern, a leading one does. */
export function splitPatternList(list: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < list.length) {
    let j = list.indexOf(',', i);
    if (j < 0) j = list.length;
    out.push(list.slice(i, j));
    i = j + 1;
  }
  return out;
}

/** 1: a positive pattern matched and no negated one; -1: a negated pattern matched; 0: nothing matched. */
export function matchPatternList(s: string, patterns: readonly string[]): 1 | 0 | -1 {
  // OpenSSH matches bytes: `?` is one byte of UTF-8, and the length limit counts bytes. Matching the UTF-8 bytes
  // (as latin1 code units) keeps non-ASCII principals behaving exactly the same.
  const subject = asBytes(s);
  let positive = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    const sub = asBytes(negated ? p.slice(1) : p);
    if (sub.length >= MAX_SUBPATTERN) return 0;
    if (matchPattern(subject, sub)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

function asBytes(s: string): string {
  // ASCII is already one code unit per byte; skip the copy on the common path (every signer is checked per commit).
  // eslint-disable-next-line no-control-regex -- the class is "every ASCII byte", control characters included.
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}
