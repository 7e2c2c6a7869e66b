import { describe, expect, it } from 'vitest';
import { escapeHtml, html, SafeHtml, text } from './html.js';

describe('html', () => {
  it('escapes every interpolation, including inside attributes', () => {
    const evil = `"><script>alert('x')</script>&`;
    const out = html`<a title="${evil}">${evil}</a>`.value;
    expect(out).toBe(
      `<a title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</a>`,
    );
  });

  it('keeps nested templates and arrays as markup, drops empty values', () => {
    const items = ['<a>', 'b'].map((s) => html`<li>${s}</li>`);
    expect(html`<ul>${items}${undefined}${null}${false}</ul>`.value).toBe('<ul><li>&lt;a&gt;</li><li>b</li></ul>');
    expect(html`${0}`.value).toBe('0');
  });

  it('a plain string is never trusted, only SafeHtml is', () => {
    expect(html`${'<b>'}${new SafeHtml('<b>')}`.value).toBe('&lt;b&gt;<b>');
  });

  it('spells out bidi overrides, zero-width and control characters with plain-text markers', () => {
    const spoof = 'alice@corp\u202Emoc.evil\u200B\u0007';
    expect(text(spoof).value).toBe('alice@corp[U+202E]moc.evil[U+200B][U+0007]');
    // The marker has no markup, so it is safe inside an attribute too.
    expect(html`<a title="${spoof}">`.value).toBe('<a title="alice@corp[U+202E]moc.evil[U+200B][U+0007]">');
    expect(text('tab\tand\nnewline').value).toBe('tab\tand\nnewline');
  });

  it('escapeHtml covers the five HTML-significant characters', () => {
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });
});
