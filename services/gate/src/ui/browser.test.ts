/**
 * The pages in a real headless Chromium, served by the gate's ops server, with decisions made by the real gate
 * against the sandbox API server and recorded in a real Redis audit trail. Needs Debian's `chromium` package
 * (/usr/bin/chromium, or CHROMIUM_PATH); no browser is downloaded.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { createGate, type AuditTrail } from '@gitops-gate/gate-core';
import { createAuditTrail, createKubeApplicationStore, createRedisLock } from '@gitops-gate/gate-store';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger, createMetricsRegistry, createOpsApp } from '@gitops-gate/telemetry';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createAuditRoutes } from '../audit-routes.js';
import { createUiRoutes } from './routes.js';
import { decodePng, pixel, pixelStats } from './test-png.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOP_REPO = 'https://github.com/org/shop.git';
const CART_REPO = 'https://github.com/org/cart.git';
const A = '1a2b3c4d'.padEnd(40, '1');
const B = 'bad0bad0'.padEnd(40, '2');
const C = 'c0ffee00'.padEnd(40, '3');
const EVIL_SIGNER = '<script>document.title="pwned"</script><img src=x onerror="document.title=1">';
const silent = createLogger('ui-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));

let redisServer: TestRedis;
let redis: Redis;
let sandbox: SandboxApiServer;
let audit: AuditTrail;
let ops: FastifyInstance | undefined;
let baseUrl: string;
let browser: Browser;
// UI_SCREENSHOT_DIR keeps the screenshots for a look; otherwise they go to a temporary directory removed afterwards.
const keepShots = process.env.UI_SCREENSHOT_DIR;
const shots = keepShots ?? mkdtempSync(join(tmpdir(), 'gg-ui-shots-'));

function verdict(repoUrl: string, sha: string, ok: boolean, identity: string): CommitVerdictJob {
  return {
    v: 1,
    kind: 'commit-verdict',
    deliveryId: randomUUID(),
    repoUrl,
    cloneUrl: repoUrl,
    repoFullName: repoUrl.replace('https://github.com/', '').replace('.git', ''),
    branch: 'main',
    sha,
    outcome: ok ? 'verified' : 'rejected',
    method: 'ssh',
    signer: { identity },
    code: ok ? 'TRUSTED_SIGNER' : 'UNTRUSTED_SIGNER',
    reasons: ok ? [] : [`key of ${identity} is not in allowed_signers`],
    rule: ok ? 'release-engineers' : 'no rule matched',
    verifiedAt: new Date().toISOString(),
    onBranch: true,
    branchHead: sha,
    // One Enforce policy selecting every Application: the gate's default deny would refuse anything else.
    policies: [
      {
        name: 'release-engineers',
        generation: 1,
        mode: 'Enforce',
        selector: {},
        ok,
        code: ok ? 'VERIFIED' : 'UNTRUSTED_SIGNER',
        signer: identity,
      },
    ],
  };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  redisServer = await startTestRedis();
  redis = createRedisConnection(redisServer.url, 'worker');
  const prefix = `ui-${randomUUID().slice(0, 8)}`;
  audit = createAuditTrail(redis, prefix);
  sandbox = await createSandboxApiServer({
    seed: [
      demoApplication({ name: 'shop', namespace: 'argocd', repoURL: SHOP_REPO, branch: 'main' }),
      demoApplication({ name: 'cart', namespace: 'argocd', repoURL: CART_REPO, branch: 'main' }),
    ],
  });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  const store = createKubeApplicationStore(kc);
  // The real gate writes the pins and the evidence the page reads; ancestry is not what this test is about.
  const gate = createGate({
    store,
    lock: createRedisLock(redis, prefix),
    audit,
    logger: silent,
    namespaces: [],
    isAncestor: async () => true,
  });
  expect((await gate.applyVerdict(verdict(SHOP_REPO, A, true, 'alice@example.com')))[0]?.action).toBe('pin');
  expect((await gate.applyVerdict(verdict(SHOP_REPO, B, false, EVIL_SIGNER)))[0]?.action).toBe('refuse-unverified');
  expect((await gate.applyVerdict(verdict(CART_REPO, C, true, 'release-bot@example.com')))[0]?.action).toBe('pin');

  ops = createOpsApp({
    registry: createMetricsRegistry('gate-ui-test', { defaultMetrics: false }),
    ready: async () => true,
    plugins: [createAuditRoutes(audit), createUiRoutes({ audit, store, namespaces: [] })],
  });
  await ops.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(ops.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await ops?.close();
  await sandbox?.close();
  redis?.disconnect();
  await redisServer?.close();
  if (!keepShots) rmSync(shots, { recursive: true, force: true });
});

describe('the gate UI in Chromium', () => {
  it('shows the pins and decisions, filters by SHA, opens an Application, and renders a non-blank page', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, javaScriptEnabled: true });
    const page = await context.newPage();
    const dialogs: string[] = [];
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('request', (r) => requests.push(r.url()));

    const res = await page.goto(`${baseUrl}/ui`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(await page.title()).toBe('Applications · gitops-gate');

    // Applications table: both pinned, with signer and method.
    const apps = await page.locator('table.apps tbody tr').allInnerTexts();
    expect(apps).toHaveLength(2);
    const cart = apps.find((t) => t.includes('argocd/cart')) ?? '';
    const shop = apps.find((t) => t.includes('argocd/shop')) ?? '';
    expect(cart).toContain(C.slice(0, 12));
    expect(cart).toContain('release-bot@example.com');
    expect(shop).toContain(A.slice(0, 12));
    expect(shop).toContain('alice@example.com');
    expect(shop).toContain('ssh');
    expect(shop).toContain(SHOP_REPO);
    expect(await page.locator('table.apps a', { hasText: A.slice(0, 12) }).getAttribute('title')).toBe(A);

    // Decisions: newest first; the hostile identity is shown as text and did nothing.
    const decisions = await page.locator('table.decisions tbody tr').allInnerTexts();
    expect(decisions).toHaveLength(3);
    expect(decisions[0]).toContain('argocd/cart');
    expect(decisions[1]).toContain('refuse-unverified');
    expect(decisions[1]).toContain(EVIL_SIGNER);
    expect(decisions[1]).toContain('UNTRUSTED_SIGNER');
    expect(decisions[2]).toContain('pin');
    expect(await page.title()).toBe('Applications · gitops-gate');

    // The filter form: a SHA prefix, submitted like a person would.
    await page.fill('input[name="sha"]', B.slice(0, 7).toUpperCase());
    await Promise.all([page.waitForURL(/sha=/), page.click('button[type="submit"]')]);
    expect(new URL(page.url()).searchParams.get('sha')).toBe(B.slice(0, 7).toUpperCase());
    const filtered = await page.locator('table.decisions tbody tr').allInnerTexts();
    expect(filtered).toHaveLength(1);
    expect(filtered[0]).toContain('refuse-unverified');
    expect(filtered[0]).toContain(B.slice(0, 12));
    expect(await page.locator('p.empty').innerText()).toContain('No opted-in Application matches commit starts with bad0bad');
    await page.screenshot({ path: join(shots, 'overview-filtered.png'), fullPage: true });

    // Back to everything, then into one Application.
    await page.click('text=clear');
    await page.waitForURL(`${baseUrl}/ui`);
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
    await Promise.all([page.waitForURL(/\/ui\/app\/argocd\/shop$/), page.click('table.apps a:text-is("argocd/shop")')]);
    expect(await page.locator('h1').innerText()).toBe('argocd/shop');
    const evidence = await page.locator('dl.kv').allInnerTexts();
    expect(evidence.join('\n')).toContain(A);
    expect(evidence.join('\n')).toContain('alice@example.com');
    expect(evidence.join('\n')).toMatch(/pinned by\s+\S+/);
    const history = await page.locator('table.decisions tbody tr').allInnerTexts();
    expect(history).toHaveLength(2);
    expect(history[0]).toContain('refuse-unverified');
    expect(history[0]).toContain('✓ follows the record below');
    expect(history[1]).toContain('first record of this Application');

    const shot = join(shots, 'app.png');
    await page.screenshot({ path: shot, fullPage: true });

    // Nothing ran, nothing was fetched besides the pages, nothing was blocked (a CSP violation logs an error).
    expect(dialogs).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(requests.every((u) => u.startsWith(`${baseUrl}/ui`))).toBe(true);
    await context.close();

    // Screenshot check: a real PNG of the page, not a blank one.
    const png = decodePng(readFileSync(shot));
    expect(png.width).toBe(1280);
    expect(png.height).toBeGreaterThanOrEqual(600);
    const stats = pixelStats(png);
    expect(stats.distinctColours).toBeGreaterThan(50);
    expect(stats.nonBackgroundShare).toBeGreaterThan(0.05);
    // The dark header bar is at the top, the light page below it.
    expect(Math.max(...pixel(png, 4, 4))).toBeLessThan(80);
    expect(Math.min(...pixel(png, 4, png.height - 4))).toBeGreaterThan(200);
  }, 90_000);
});
