/**
 * Auto-escaping HTML templates. Commit identities, reasons and Application fields come from people who may be hostile
 * (anyone who can push a commit picks its signer identity text), so every interpolated value is escaped unless it was
 * itself produced by `html` — there is no way to forget an escape call.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Characters that change how text is displayed without being visible: bidi overrides/isolates (an identity like
 * "alice@corp\u202Emoc.live" would read as a trusted address), zero-width characters and control characters. They are
 * shown as a visible [U+XXXX] marker so a reviewer sees exactly what was signed.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point: they are made visible.
const INVISIBLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/**
 * Escaped text with invisible characters spelled out. The marker is plain text (no markup), so the result is safe
 * both between tags and inside a double-quoted attribute: templates never need to know which context they are in.
 */
export function text(value: unknown): SafeHtml {
  const s =
    value === undefined || value === null
      ? ''
      : typeof value === 'string'
        ? value
        : typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
          ? String(value)
          : value instanceof Date
            ? value.toString()
            : (JSON.stringify(value) ?? '');
  const shown = s.replace(INVISIBLE, (c) => `[U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`);
  return new SafeHtml(escapeHtml(shown));
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return text(value).value;
}

/** Tagged template: literal parts are trusted markup, interpolations are escaped (arrays are concatenated). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}
