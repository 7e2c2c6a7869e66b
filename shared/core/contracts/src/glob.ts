/**
 * The one glob matcher of the project: `*` matches any run of characters and `?` exactly one, everything else is
 * literal, and the whole subject must match. With a `separator` (`/` for git ref names: policy branches, image-rule
 * tags), neither `*` nor `?` matches it, so `release/*` never matches `release/1.2/evil`. Without one it is the
 * OpenSSH pattern match (allowed_signers principals and namespaces). Iterative with single-star backtracking:
 * linear-ish and never recursive, whatever the pattern.
 */
export function globMatch(pattern: string, subject: string, options: { separator?: string } = {}): boolean {
  const sep = options.separator;
  let p = 0;
  let s = 0;
  let star = -1;
  let starS = 0;
  while (s < subject.length) {
    const c = pattern[p];
    if (c === '*') {
      star = p++;
      starS = s;
    } else if (c !== undefined && (c === subject[s] || (c === '?' && subject[s] !== sep))) {
      p++;
      s++;
    } else if (star >= 0 && subject[starS] !== sep) {
      // Let the last `*` swallow one more character (never the separator) and retry after it.
      p = star + 1;
      s = ++starS;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** A git ref-name glob (`main`, `release/*`, `v?.*`): `*` and `?` stay within one `/`-separated segment. */
export function refNameMatches(pattern: string, name: string): boolean {
  return globMatch(pattern, name, { separator: '/' });
}
