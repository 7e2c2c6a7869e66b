/**
 * The image, without a Docker engine: the Dockerfile parses into the stages and settings the manifests rely on, the
 * build context carries what it copies and nothing heavy, and — replaying the prune stage on this machine — the
 * three entry points start from a production-only install (no dev dependencies, no sources).
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxApiServer, gatePolicyKind, argoApplicationKind, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { freePort, startTestRedis, type TestRedis } from '@gitops-gate/testing';

const ROOT = new URL('../../', import.meta.url).pathname;
const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
const INSTRUCTIONS = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

/** Logical lines: comments dropped, backslash continuations joined. */
function instructions(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let buf = '';
  for (const line of text.split('\n')) {
    if (!buf && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    buf += line.endsWith('\\') ? `${line.slice(0, -1)} ` : line;
    if (line.endsWith('\\')) continue;
    const m = /^\s*(\S+)\s*(.*)$/.exec(buf);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    buf = '';
  }
  return out;
}

describe('deploy/Dockerfile', () => {
  const ins = instructions(dockerfile);
  it('parses: only known instructions, three stages on Node 22', () => {
    for (const i of ins) expect(INSTRUCTIONS.has(i.op), i.op).toBe(true);
    const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
    expect(froms).toHaveLength(3);
    for (const f of froms) expect(f).toMatch(/^node:22-bookworm-slim\b/);
    expect(froms.join(' ')).not.toMatch(/:latest/);
  });
  it('the runtime stage is non-root, production-only and runs node with a service entry point', () => {
    const lastFrom = ins.map((i) => i.op).lastIndexOf('FROM');
    const runtime = ins.slice(lastFrom);
    const user = runtime.find((i) => i.op === 'USER')?.args ?? '';
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')?.args).toBe('["node"]');
    expect(runtime.find((i) => i.op === 'CMD')?.args).toBe('["services/receiver/dist/main.js"]');
    expect(runtime.find((i) => i.op === 'ENV')?.args).toMatch(/HOME=\/tmp/);
    expect(runtime.some((i) => i.op === 'RUN' && /install[^\n]*git/.test(i.args))).toBe(true);
    const prune = ins.find((i) => i.op === 'RUN' && i.args.includes('--omit=dev'));
    expect(prune).toBeDefined();
    for (const port of ['8080', '8081', '9090']) expect(runtime.find((i) => i.op === 'EXPOSE')?.args).toContain(port);
  });
  it('the build context has everything the Dockerfile copies and excludes heavy or secret things', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const must of ['.git', '**/node_modules', '**/dist', '.gitops-gate']) expect(ignore).toContain(must);
    const copied = ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const path of copied) {
      expect(existsSync(join(ROOT, path)), path).toBe(true);
      expect(ignore.includes(path), `${path} is copied but ignored`).toBe(false);
    }
  });
});

describe('entry points from the pruned install (the prune stage replayed)', () => {
  let app: string;
  let redis: TestRedis;
  let sandbox: SandboxApiServer;

  beforeAll(async () => {
    app = mkdtempSync(join(tmpdir(), 'gg-image-'));
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    for (const dir of ['shared', 'services']) {
      cpSync(join(ROOT, dir), join(app, dir), { recursive: true, filter: (src) => !/\/(node_modules|src|bench|\.turbo)(\/|$)/.test(src) });
    }
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, stdio: 'pipe' });
    redis = await startTestRedis();
    sandbox = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind] });
    await sandbox.writeKubeconfig(join(app, 'kubeconfig'));
    writeFileSync(join(app, 'allowed_signers'), 'dev@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB6o1eNs6ysA1bq8fU5J8mKqj7Xx1c2Y6k3mXh3R1Xx\n');
  }, 300_000);
  afterAll(async () => {
    await sandbox?.close();
    await redis?.close();
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('has no dev dependencies and no TypeScript sources', () => {
    for (const dev of ['typescript', 'vitest', 'turbo', 'node', '@sigstore/mock']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(join(app, 'services/receiver/src'))).toBe(false);
    expect(existsSync(join(app, 'services/receiver/dist/main.js'))).toBe(true);
  });

  it.each(['receiver', 'verifier', 'gate'] as const)('%s starts and answers /healthz', async (service) => {
    const port = await freePort();
    const portVar = { receiver: 'RECEIVER_PORT', verifier: 'VERIFIER_HTTP_PORT', gate: 'GATE_HTTP_PORT' }[service];
    const child = spawn(process.execPath, [`services/${service}/dist/main.js`], {
      cwd: app,
      env: {
        PATH: process.env.PATH, HOME: tmpdir(), NODE_ENV: 'production', REDIS_URL: redis.url, WEBHOOK_SECRETS: 's', RECEIVER_HOST: '127.0.0.1',
        [portVar]: String(port), ALLOWED_SIGNERS_FILE: join(app, 'allowed_signers'), KUBECONFIG: join(app, 'kubeconfig'),
        GIT_CACHE_DIR: join(app, `cache-${service}`), LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let ok = false;
      for (let i = 0; i < 200 && !ok && child.exitCode === null; i++) {
        ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
        if (!ok) await sleep(50);
      }
      expect(ok, stderr).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
    expect(child.exitCode, stderr).toBe(0);
  });
});
