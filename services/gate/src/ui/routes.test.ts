/**
 * The pages against in-memory fakes of the audit trail and the Application store, over real HTTP on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KubeError } from '@gitops-gate/gate-core';
import { createUiRoutes, externalLinkAnnotation, type UiDeps } from './routes.js';
import { application, decision, memoryAudit, memoryStore, serveRoute } from './test-fakes.js';

const A = 'a'.repeat(40);
const B = 'b1c2'.padEnd(40, 'd');
const C = 'c0ffee'.padEnd(40, '0');
const NOW = new Date('2025-03-01T12:00:00Z');
const EVIL = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`;

let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.map((c) => c()));
  closers = [];
});

async function setup(over: Partial<UiDeps> = {}) {
  const audit = memoryAudit(() => NOW);
  const store = memoryStore([]);
  const route = createUiRoutes({ audit, store, namespaces: [], now: () => NOW, ...over });
  const srv = await serveRoute(route);
  closers.push(srv.close);
  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(srv.url + path, init);
    return { status: res.status, headers: res.headers, body: await res.text() };
  };
  return { audit, store, route, get, url: srv.url };
}

/** Text of the rows of one table (by class), tags stripped, for assertions that do not depend on markup. */
function rows(body: string, table: 'apps' | 'decisions'): string[] {
  const m = new RegExp(`<table class="${table}">([\\s\\S]*?)</table>`).exec(body);
  if (!m?.[1]) return [];
  return [...m[1].matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].slice(1).map((r) =>
    (r[1] ?? '')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

describe('GET /ui', () => {
  it('lists opted-in Applications with their pin, signer and method, and recent decisions', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(
      application({ name: 'shop', pin: { sha: A, signer: 'dev@example.com', method: 'ssh' } }),
      application({ name: 'billing', namespace: 'payments', repoURL: 'git@github.com:org/billing.git', branch: 'release' }),
      application({ name: 'not-opted-in', branch: null }),
    );
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    await audit.record(decision({ app: 'argocd/shop', sha: B, action: 'refuse-unverified' }));

    const res = await get('/ui');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const apps = rows(res.body, 'apps');
    expect(apps).toHaveLength(2);
    expect(apps[0]).toContain('argocd/shop');
    expect(apps[0]).toContain(A.slice(0, 12));
    expect(apps[0]).toContain('dev@example.com');
    expect(apps[0]).toContain('ssh');
    expect(apps[0]).toContain('2025-03-01 10:00:01Z');
    expect(apps[1]).toContain('payments/billing');
    expect(apps[1]).toContain('not pinned yet');
    expect(res.body).not.toContain('not-opted-in');
    // The short SHA links to the full one (every decision about it), and to GitHub.
    expect(res.body).toContain(`href="/ui?sha=${A}" title="${A}"`);
    expect(res.body).toContain(`href="https://github.com/org/shop/commit/${A}"`);
    expect(res.body).toContain('href="/ui/app/argocd/shop"');

    const decisions = rows(res.body, 'decisions');
    expect(decisions).toHaveLength(2);
    expect(decisions[0]).toContain('refuse-unverified'); // newest first
    expect(decisions[0]).toContain('UNSIGNED: commit has no signature');
    expect(decisions[1]).toContain('pin');
    expect(res.body).toContain('class="badge b-bad">refuse-unverified<');
    expect(res.body).toContain('class="badge b-ok">pin<');
  });

  it('sets a strict CSP and nosniff, and never serves script', async () => {
    const { get } = await setup();
    const res = await get('/ui');
    expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'unsafe-inline'/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).not.toMatch(/<script/i);
    expect(res.body).not.toMatch(/ on[a-z]+=/i);
  });

  it('escapes attacker-controlled identities, reasons, repositories and filter values', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(
      application({ name: 'shop', repoURL: `https://example.com/${EVIL}`, branch: EVIL, pin: { sha: A, signer: EVIL, method: 'ssh' } }),
    );
    await audit.record(
      decision({
        app: 'argocd/shop',
        sha: A,
        action: 'refuse-unverified',
        reason: EVIL,
        branch: EVIL,
        verdict: { outcome: 'rejected', method: 'ssh', code: EVIL, signer: `${EVIL}\u202Egro.elpmaxe@evil`, issuer: EVIL, reasons: [EVIL] },
      }),
    );
    for (const path of [
      '/ui',
      `/ui?app=${encodeURIComponent(EVIL)}`,
      `/ui?sha=${encodeURIComponent(EVIL)}`,
      '/ui/app/argocd/shop',
      `/ui/app/argocd/shop?sha=${encodeURIComponent(EVIL)}`,
    ]) {
      const { body } = await get(path);
      expect(body, path).not.toMatch(/<script/i);
      expect(body, path).not.toMatch(/<img/i);
      expect(body, path).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
    const { body } = await get('/ui');
    // A right-to-left override in an identity is shown, not obeyed.
    expect(body).toContain('[U+202E]gro.elpmaxe@evil');
  });

  it('filters decisions and Applications by SHA prefix and by Application', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(
      application({ name: 'shop', pin: { sha: A, signer: 'dev@example.com' } }),
      application({ name: 'cart', pin: { sha: C, signer: 'ci@example.com' } }),
    );
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    await audit.record(decision({ app: 'argocd/cart', sha: C, action: 'pin' }));
    await audit.record(decision({ app: 'argocd/shop', sha: B, action: 'refuse-unverified' }));

    const bySha = await get('/ui?sha=C0FFEE');
    expect(bySha.status).toBe(200);
    expect(rows(bySha.body, 'decisions')).toHaveLength(1);
    expect(rows(bySha.body, 'decisions')[0]).toContain('argocd/cart');
    expect(rows(bySha.body, 'apps')).toHaveLength(1);
    expect(rows(bySha.body, 'apps')[0]).toContain('argocd/cart');
    expect(bySha.body).toContain('value="c0ffee"'); // the form keeps the (normalised) filter
    expect(bySha.body).toContain('commit starts with c0ffee');

    const byApp = await get('/ui?app=argocd/shop');
    expect(rows(byApp.body, 'decisions')).toHaveLength(2);
    expect(rows(byApp.body, 'apps').map((r) => r.split(' ')[0])).toEqual(['argocd/shop']);
    expect(byApp.body).toContain('<option value="argocd/cart">'); // suggestions still list every Application

    const limited = await get('/ui?limit=1');
    expect(rows(limited.body, 'decisions')).toHaveLength(1);
    expect(limited.body).toContain('Showing the newest 1');
  });

  it('a SHA filter that is not hex is refused with a message, and matches nothing', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(application({ name: 'shop', pin: { sha: A, signer: 'dev@example.com' } }));
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    const res = await get('/ui?sha=main');
    expect(res.status).toBe(400);
    expect(res.body).toContain('&quot;main&quot; is not a commit SHA prefix');
    expect(rows(res.body, 'decisions')).toHaveLength(0);
    expect(rows(res.body, 'apps')).toHaveLength(0);
  });

  it('says so when nothing opts in, nothing was decided, or nothing matches', async () => {
    const { audit, store, get } = await setup({ namespaces: ['argocd', 'apps'] });
    const empty = await get('/ui');
    expect(empty.body).toContain('No Argo CD Application opts in yet (in namespaces argocd, apps)');
    expect(empty.body).toContain('No decisions recorded yet');
    expect(empty.body).not.toContain('<table');

    store.apps.push(application({ name: 'shop' }));
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    const none = await get('/ui?sha=fff');
    expect(none.body).toContain('No opted-in Application matches commit starts with fff.');
    expect(none.body).toContain('No decision matches commit starts with fff.');
  });

  it('shows the audit checkpoint verifier key, or says the trail is not signed', async () => {
    const key = 'gitops-gate-audit+1a2b3c4d+AbCd/Ef+gh==';
    const signed = await (await setup({ auditKey: key })).get('/ui');
    expect(signed.body).toContain(`<pre class="mono" id="audit-key">${key}</pre>`);
    expect(signed.body).toContain('gitops-gate audit --verify-chain --public-key FILE');
    const unsigned = await (await setup()).get('/ui');
    expect(unsigned.body).toMatch(/id="audit-key">None: audit checkpoints are not signed/);
  });

  it('keeps showing the decisions when the Kubernetes API is unreachable', async () => {
    const { audit, store, get } = await setup();
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    store.fail = new KubeError('UNAVAILABLE', 0, 'list applications: connect ECONNREFUSED <api>');
    const res = await get('/ui');
    expect(res.status).toBe(200);
    expect(res.body).toContain('Applications could not be loaded:</strong> list applications: connect ECONNREFUSED &lt;api&gt;');
    expect(rows(res.body, 'decisions')).toHaveLength(1);
  });

  it('only shows Applications in the namespaces the gate watches', async () => {
    const { store, get } = await setup({ namespaces: ['argocd'] });
    store.apps.push(application({ name: 'shop' }), application({ name: 'other', namespace: 'team-b' }));
    const res = await get('/ui');
    expect(rows(res.body, 'apps')).toHaveLength(1);
    expect((await get('/ui/app/team-b/other')).status).toBe(404);
  });
});

describe('GET /ui/app/<ns>/<name>', () => {
  it('shows the current pin, the evidence, the pinning decision and the history with its hash chain', async () => {
    const { audit, store, get } = await setup();
    const first = await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin', previousRevision: 'main' }));
    const refused = await audit.record(decision({ app: 'argocd/shop', sha: B, action: 'refuse-unverified', previousRevision: A }));
    await audit.record(decision({ app: 'argocd/other', sha: C, action: 'pin' }));
    store.apps.push(
      application({ name: 'shop', pin: { sha: A, signer: 'dev@example.com', method: 'ssh', decisionId: 'not-the-record-id' } }),
    );

    const res = await get('/ui/app/argocd/shop');
    expect(res.status).toBe(200);
    expect(res.body).toContain('<h1 class="mono">argocd/shop</h1>');
    expect(res.body).toContain('<span class="badge b-ok">pinned</span>');
    expect(res.body).toContain(`<dt>verified commit</dt><dd class="mono">${A}</dd>`);
    expect(res.body).toContain('<dt>signer</dt><dd class="mono">dev@example.com</dd>');
    expect(res.body).toMatch(/<dt>pinned by<\/dt><dd>.*first verified commit pinned/);
    const history = rows(res.body, 'decisions');
    expect(history).toHaveLength(2);
    expect(history[0]).toContain('refuse-unverified');
    expect(history[0]).toContain(`prev ${first.hash}`);
    expect(history[0]).toContain(`hash ${refused.hash}`);
    expect(history[0]).toContain('✓ follows the record below');
    expect(history[1]).toContain('first record of this Application');
    expect(history[1]).toContain(`revision main → ${A}`);
    expect(res.body).not.toContain('argocd/other');
  });

  it('flags a chain break among the records shown', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(application({ name: 'shop' }));
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    const second = await audit.record(decision({ app: 'argocd/shop', sha: B, action: 'skip-same' }));
    second.prevHash = 'f'.repeat(64);
    const res = await get('/ui/app/argocd/shop');
    expect(rows(res.body, 'decisions')[0]).toContain('⚠ does not follow the record below');
  });

  it('shows drift when targetRevision is not the commit the evidence names', async () => {
    const { store, get } = await setup();
    store.apps.push(application({ name: 'shop', targetRevision: C, pin: { sha: A, signer: 'dev@example.com' } }));
    const res = await get('/ui/app/argocd/shop');
    expect(res.body).toContain('<strong>Drift:</strong>');
    expect((await get('/ui')).body).toContain('>drift</span>');
  });

  it('marks pins made under an Audit-mode policy, and badges every kind of action', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(application({ name: 'shop', pin: { sha: A, signer: 'dev@example.com', mode: 'audit' } }));
    await audit.record(
      decision({
        app: 'argocd/shop',
        sha: A,
        action: 'audit-pin',
        reason: 'first verified commit pinned; audit: every policy would allow it',
      }),
    );
    for (const action of ['refuse-no-policy', 'deferred-stale-policy', 'error-forbidden', 'skip-older']) {
      await audit.record(decision({ app: 'argocd/shop', sha: B, action, reason: action }));
    }
    const page = await get('/ui/app/argocd/shop');
    expect(page.body).toContain('<dt>mode</dt><dd>audit <span class="badge b-warn"');
    expect(page.body).toMatch(/<dt>pinned by<\/dt><dd>.*audit-pin/);
    const overview = await get('/ui');
    expect(rows(overview.body, 'apps')[0]).toContain('audit mode');
    expect(overview.body).toContain('class="badge b-warn">audit-pin<');
    expect(overview.body).toContain('class="badge b-bad">refuse-no-policy<');
    expect(overview.body).toContain('class="badge b-skip">deferred-stale-policy<');
    expect(overview.body).toContain('class="badge b-warn">error-forbidden<');
    expect(overview.body).toContain('class="badge b-skip">skip-older<');
  });

  it('filters the history by SHA prefix', async () => {
    const { audit, store, get } = await setup();
    store.apps.push(application({ name: 'shop' }));
    await audit.record(decision({ app: 'argocd/shop', sha: A, action: 'pin' }));
    await audit.record(decision({ app: 'argocd/shop', sha: B, action: 'refuse-unverified' }));
    const res = await get(`/ui/app/argocd/shop?sha=${B.slice(0, 6)}`);
    const history = rows(res.body, 'decisions');
    expect(history).toHaveLength(1);
    expect(history[0]).toContain('refuse-unverified');
    expect(history[0]).toContain('previous record not shown');
  });

  it('404 for an unknown Application without history; a deleted one with history still shows it', async () => {
    const { audit, get } = await setup();
    const missing = await get('/ui/app/argocd/nothing');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('There is no Application argocd/nothing and no decision about it.');
    await audit.record(decision({ app: 'argocd/gone', sha: A, action: 'pin' }));
    const gone = await get('/ui/app/argocd/gone');
    expect(gone.status).toBe(200);
    expect(gone.body).toContain('This Application is not in the cluster');
    expect(rows(gone.body, 'decisions')).toHaveLength(1);
  });

  it('refuses malformed paths and names', async () => {
    const { get } = await setup();
    expect((await get('/ui/app/argocd')).status).toBe(404);
    expect((await get('/ui/app/argocd/a/b')).status).toBe(404);
    expect((await get('/ui/app/argocd/%E0%A4%A')).status).toBe(404);
    const bad = await get(`/ui/app/argocd/${encodeURIComponent('<b>x')}`);
    expect(bad.status).toBe(404);
    expect(bad.body).toContain('&lt;b&gt;x');
  });
});

describe('routing', () => {
  it('answers only under its base path, read-only', async () => {
    const { route, get } = await setup({ basePath: '/gate-ui/' });
    expect((await get('/api/decisions')).status).toBe(404);
    expect((await get('/ui')).body).toBe('{"error":"not found"}');
    expect((await get('/gate-uix')).body).toBe('{"error":"not found"}');
    expect((await get('/gate-ui/')).status).toBe(200);
    expect((await get('/gate-ui/nope')).status).toBe(404);
    const post = await get('/gate-ui', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await get('/gate-ui', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(500);
    expect(typeof route).toBe('function');
  });
});

describe('externalLinkAnnotation', () => {
  it('is the Argo CD link annotation pointing at the Application page', () => {
    expect(externalLinkAnnotation('https://gate.example.com/ui/', { namespace: 'argocd', name: 'shop' })).toEqual({
      'link.argocd.argoproj.io/gitops-gate': 'https://gate.example.com/ui/app/argocd/shop',
    });
    expect(externalLinkAnnotation('http://127.0.0.1:8081/ui?x=1#y', { namespace: 'a', name: 'b' })).toEqual({
      'link.argocd.argoproj.io/gitops-gate': 'http://127.0.0.1:8081/ui/app/a/b',
    });
  });

  it('refuses anything but http(s) base URLs', () => {
    expect(() => externalLinkAnnotation('javascript:alert(1)//', { namespace: 'a', name: 'b' })).toThrow(/http/);
    expect(() => externalLinkAnnotation('not a url', { namespace: 'a', name: 'b' })).toThrow();
  });
});
