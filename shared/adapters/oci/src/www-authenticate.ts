/**
 * RFC 7235 `WWW-Authenticate` parsing, enough for registries: one or more challenges, each a scheme followed by
 * comma-separated `name=value` or `name="quoted value"` parameters.
 */
export interface Challenge {
  /** Lower-cased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let s = header;
  let current: Challenge | undefined;
  const skip = (): void => {
    s = s.replace(/^[\s,]+/, '');
  };
  skip();
  while (s.length > 0) {
    const m = TOKEN.exec(s);
    if (m === null) break; // Malformed tail: keep what parsed so far.
    const word = m[0];
    const rest = s.slice(word.length).replace(/^\s*/, '');
    if (rest.startsWith('=') && current !== undefined && !/^=+\s*(,|$)/.test(rest)) {
      // A parameter of the current challenge.
      s = rest.slice(1).replace(/^\s*/, '');
      let value: string;
      if (s.startsWith('"')) {
        let i = 1;
        value = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        s = s.slice(i + 1);
      } else {
        // Lenient: unquoted values run to the next comma or space (servers send URLs unquoted now and then).
        const v = /^[^\s,"]*/.exec(s);
        value = v === null ? '' : v[0];
        s = s.slice(value.length);
      }
      current.params[word.toLowerCase()] = value;
    } else {
      // A new challenge (token68 credentials after a scheme are not used by registries and are skipped).
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
      s = rest;
      const t68 = /^[A-Za-z0-9._~+/-]+=*(?=\s*(,|$))/.exec(s);
      if (t68 !== null && !s.slice(t68[0].length).trimStart().startsWith('=')) s = s.slice(t68[0].length);
    }
    skip();
  }
  return out;
}
