/**
 * The layout is the architecture: where a package lives says what it may import.
 *
 * (a) every workspace has a README.md and a row in the root README's layout table whose text starts with the
 *     package's one-sentence `description`, so the table and the packages cannot drift apart;
 * (b) core packages (shared/core/*) depend — package.json `dependencies` and shipped src imports — only on other core
 *     packages and pure libraries: no Redis, queue, Kubernetes, HTTP server/client, logger or child process;
 * (c) nothing in shared/ imports a service;
 * (d) no service imports another: services meet only through Redis.
 * (c) and (d) read every src file, tests included: a test importing another service's code couples them just the same.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, importedSpecifiers, listWorkspaces, packageOf, shippedSourceFiles, type Workspace } from '../lib/workspaces.js';

/** Libraries that do I/O or belong to one runtime service; a core package never needs one. */
const FORBIDDEN_IN_CORE = [
  'ioredis',
  'bullmq',
  '@kubernetes/client-node',
  'fastify',
  'pino',
  'prom-client',
  'undici',
  '@octokit/*',
  '@opentelemetry/*',
  'node:http',
  'node:https',
  'node:http2',
  'node:net',
  'node:tls',
  'node:dgram',
  'node:child_process',
  'http',
  'https',
  'net',
  'child_process',
];

/** Does `specifier` name a forbidden library (or a subpath / scope member of one)? */
export function forbiddenInCore(specifier: string): string | undefined {
  return FORBIDDEN_IN_CORE.find((entry) =>
    entry.endsWith('/*') ? specifier.startsWith(entry.slice(0, -1)) : specifier === entry || specifier.startsWith(`${entry}/`),
  );
}

/** Every .ts file under src/, tests and test helpers included. */
function allSourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d)) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) {
        if (entry !== 'node_modules') walk(p);
      } else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) {
        out.push(p);
      }
    }
  };
  walk(join(dir, 'src'));
  return out;
}

const all = listWorkspaces();
const byName = new Map(all.map((w) => [w.name, w]));
const services = all.filter((w) => w.kind === 'service');

/** The workspace a specifier written in `file` reaches: by package name, or by a relative path into its folder. */
function workspaceReached(file: string, specifier: string): Workspace | undefined {
  if (specifier.startsWith('.')) {
    const target = resolve(dirname(file), specifier);
    return all.find((w) => target === w.dir || target.startsWith(`${w.dir}/`));
  }
  const name = packageOf(specifier);
  return name === undefined ? undefined : byName.get(name);
}

/** `file: specifier` for each import in `files` that reaches a workspace `bad` accepts (other than `self`). */
function importsReaching(files: string[], self: Workspace, bad: (w: Workspace) => boolean): string[] {
  const out: string[] = [];
  for (const file of files) {
    for (const specifier of importedSpecifiers(readFileSync(file, 'utf8'))) {
      const target = workspaceReached(file, specifier);
      if (target !== undefined && target !== self && bad(target)) out.push(`${relative(ROOT, file)}: ${specifier}`);
    }
  }
  return out;
}

/** Rows of the README's layout table: path (first backticked text of the path cell) → text of the last cell. */
export function layoutRows(readme: string): Map<string, string> {
  const start = readme.indexOf('\n## Layout\n');
  const end = readme.indexOf('\n## ', start + 1);
  const rows = new Map<string, string>();
  if (start < 0) return rows;
  for (const line of readme.slice(start, end < 0 ? undefined : end).split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | kind | [`path`](path/README.md) | what |  →  ['', kind, path, what, '']
    if (cells.length < 5) continue;
    const path = /`([^`]+)`/.exec(cells[2]!)?.[1];
    if (path !== undefined) rows.set(path, cells[3]!);
  }
  return rows;
}

describe('layout: every package is described', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = layoutRows(readme);

  it('finds every group of workspaces', () => {
    expect(new Set(all.map((w) => w.kind))).toEqual(new Set(['core', 'adapter', 'dev', 'cli', 'service']));
    expect(all.length).toBeGreaterThanOrEqual(20);
  });

  for (const ws of all) {
    it(`${ws.path}: README.md, a one-sentence description, and a layout row starting with it`, () => {
      expect(readdirSync(ws.dir), `${ws.path} has no README.md`).toContain('README.md');
      expect(ws.description, `${ws.path}/package.json has no description`).toMatch(/^[A-Za-z].{20,}\.$/);
      expect(rows.get(ws.path), `README layout table has no row for ${ws.path}`).toBeDefined();
      expect(rows.get(ws.path)!.startsWith(ws.description!), `row of ${ws.path} does not start with its description`).toBe(true);
    });
  }

  it('the layout table has no row for a package that does not exist', () => {
    const known = new Set(all.map((w) => w.path));
    const stale = [...rows.keys()].filter((p) => (p.startsWith('shared/') || p.startsWith('services/')) && !known.has(p));
    expect(stale).toEqual([]);
  });

  it('reads rows as written: a row whose text does not start with the description is told apart', () => {
    const table =
      '# T\n\n## Layout\n\n| kind | path | what |\n|---|---|---|\n| core | [`shared/core/x`](x) | Other words. The X. |\n\n## Next\n| a | `shared/core/y` | z |\n';
    expect(layoutRows(table)).toEqual(new Map([['shared/core/x', 'Other words. The X.']]));
    expect(layoutRows(table).get('shared/core/x')!.startsWith('The X.')).toBe(false);
  });
});

describe('layout: core packages are pure', () => {
  for (const ws of all.filter((w) => w.kind === 'core')) {
    it(`${ws.path}: depends only on core packages and pure libraries`, () => {
      const problems: string[] = [];
      for (const dep of Object.keys(ws.dependencies)) {
        const local = byName.get(dep);
        if (local !== undefined && local.kind !== 'core') problems.push(`package.json: ${dep} is ${local.kind}`);
        if (forbiddenInCore(dep) !== undefined) problems.push(`package.json: ${dep}`);
      }
      for (const file of shippedSourceFiles(ws.dir)) {
        for (const specifier of importedSpecifiers(readFileSync(file, 'utf8'))) {
          const where = relative(ROOT, file);
          if (forbiddenInCore(specifier) !== undefined) problems.push(`${where}: ${specifier}`);
          const target = workspaceReached(file, specifier);
          if (target !== undefined && target !== ws && target.kind !== 'core') problems.push(`${where}: ${specifier} (${target.kind})`);
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('the rule catches what it must (attacker check on the matcher)', () => {
    for (const bad of [
      'ioredis',
      'bullmq',
      '@kubernetes/client-node',
      'fastify',
      'pino',
      'pino/file',
      'undici',
      'node:http',
      'node:https',
      'node:net',
      'node:child_process',
      'child_process',
      '@opentelemetry/api',
      '@octokit/core',
    ]) {
      expect(forbiddenInCore(bad), bad).toBeDefined();
    }
    for (const fine of ['zod', 'openpgp', '@sigstore/core', 'node:crypto', 'node:fs', 'pinot', 'fastify-like', 'node:https-proxy']) {
      expect(forbiddenInCore(fine), fine).toBeUndefined();
    }
  });
});

describe('layout: imports between groups', () => {
  for (const ws of all.filter((w) => w.path.startsWith('shared/'))) {
    it(`${ws.path}: imports no service`, () => {
      const bad = importsReaching(allSourceFiles(ws.dir), ws, (t) => t.kind === 'service');
      const declared = [...Object.keys(ws.dependencies), ...Object.keys(ws.devDependencies)].filter(
        (d) => byName.get(d)?.kind === 'service',
      );
      expect([...bad, ...declared.map((d) => `package.json: ${d}`)]).toEqual([]);
    });
  }

  for (const ws of services) {
    it(`${ws.path}: imports no other service (services meet only through Redis)`, () => {
      const bad = importsReaching(allSourceFiles(ws.dir), ws, (t) => t.kind === 'service');
      const declared = [...Object.keys(ws.dependencies), ...Object.keys(ws.devDependencies)].filter(
        (d) => d !== ws.name && byName.get(d)?.kind === 'service',
      );
      expect([...bad, ...declared.map((d) => `package.json: ${d}`)]).toEqual([]);
    });
  }

  it('sees an import of a service by package name and by relative path', () => {
    const receiver = services.find((w) => w.path === 'services/receiver')!;
    const fromGate = join(ROOT, 'services/gate/src/x.ts');
    expect(workspaceReached(fromGate, '@gitops-gate/receiver')).toBe(receiver);
    expect(workspaceReached(fromGate, '../../receiver/src/app.js')).toBe(receiver);
    expect(workspaceReached(fromGate, './processor.js')?.path).toBe('services/gate');
    expect(workspaceReached(fromGate, 'node:fs')).toBeUndefined();
  });
});
