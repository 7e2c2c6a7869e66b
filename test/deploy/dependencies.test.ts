/**
 * Every workspace's package.json lists as runtime `dependencies` exactly the packages its shipped source imports, and
 * test-only packages only in devDependencies: a missing one breaks an installed build (it only worked by hoisting), an
 * unused one is installed and audited in production for nothing.
 *
 * Shipped source = src/**\/*.ts without tests (`*.test.ts`, `test-*.ts`) and without `src/testing/` (helpers for tests).
 * Imports are static and dynamic `import`/`export … from`, `import('…')`, `require('…')` and `require.resolve('…')`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Workspace {
  dir: string;
  name: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

/** The workspace globs of the root package.json (`shared/core/*`, `shared/cli`, …), each `*` one directory level. */
function workspaceDirs(): string[] {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces?: string[] };
  const dirs: string[] = [];
  for (const pattern of root.workspaces ?? []) {
    if (!pattern.endsWith('/*')) {
      dirs.push(join(ROOT, pattern));
      continue;
    }
    const parent = join(ROOT, pattern.slice(0, -2));
    for (const entry of readdirSync(parent)) dirs.push(join(parent, entry));
  }
  return dirs;
}

function workspaces(): Workspace[] {
  const out: Workspace[] = [];
  for (const dir of workspaceDirs()) {
    let pkg: { name?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg;
    } catch {
      continue; // not a workspace (e.g. a stray directory)
    }
    out.push({ dir, name: pkg.name ?? relative(ROOT, dir), dependencies: pkg.dependencies ?? {}, devDependencies: pkg.devDependencies ?? {} });
  }
  return out;
}

function isShipped(path: string): boolean {
  return path.endsWith('.ts') && !path.endsWith('.d.ts') && !path.endsWith('.test.ts') && !/(^|\/)test-[^/]*\.ts$/.test(path);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d)) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) {
        if (entry !== 'testing' && entry !== 'node_modules') walk(p);
      } else if (isShipped(p)) {
        out.push(p);
      }
    }
  };
  walk(join(dir, 'src'));
  return out;
}

const IMPORT_PATTERNS = [
  /(?:^|[\s;])(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/g,
  /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\brequire(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for relative and node: ones. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export function importedPackages(text: string): Set<string> {
  // Comments may quote import lines (examples in docs); only code counts.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out = new Set<string>();
  for (const re of IMPORT_PATTERNS) {
    for (const m of code.matchAll(re)) {
      const name = packageOf(m[1]!);
      if (name !== undefined) out.add(name);
    }
  }
  return out;
}

// Node built-ins imported without the node: prefix would be flagged as missing packages; none are in use today.
const BUILTINS = new Set(['fs', 'path', 'crypto', 'os', 'url', 'util', 'child_process', 'http', 'https', 'net', 'stream', 'events']);

describe('package.json dependencies match what src imports', () => {
  const all = workspaces();

  it('finds the workspaces and their sources', () => {
    expect(all.length).toBeGreaterThanOrEqual(10);
    expect(all.map((w) => w.name)).toContain('@gitops-gate/bundle-verify');
    expect(all.map((w) => w.name)).toContain('@gitops-gate/gate-store');
  });

  for (const ws of all) {
    it(`${ws.name}: runtime dependencies are exactly the shipped imports`, () => {
      const used = new Map<string, string>();
      for (const file of sourceFiles(ws.dir)) {
        for (const name of importedPackages(readFileSync(file, 'utf8'))) {
          if (name !== ws.name && !BUILTINS.has(name) && !used.has(name)) used.set(name, relative(ws.dir, file));
        }
      }
      const missing = [...used].filter(([name]) => !(name in ws.dependencies)).map(([name, file]) => `${name} (imported by ${file})`);
      const unused = Object.keys(ws.dependencies).filter((name) => !used.has(name) && !name.startsWith('@types/'));
      expect({ missing, unused }).toEqual({ missing: [], unused: [] });
    });
  }
});

describe('the import scanner', () => {
  it('reads static, type-only, re-export, dynamic and require imports and ignores comments', () => {
    const text = [
      "import { a } from '@scope/pkg/sub';",
      "import type { B } from 'typed-only';",
      "export { c } from 'reexported';",
      "import 'side-effect';",
      "const d = await import('dynamic');",
      "const e = require.resolve('resolved/seeds.json');",
      "import { f } from './relative.js';",
      "import { g } from 'node:fs';",
      "// import { h } from 'commented';",
      "/* import { i } from 'block-commented'; */",
    ].join('\n');
    expect([...importedPackages(text)].sort()).toEqual(['@scope/pkg', 'dynamic', 'reexported', 'resolved', 'side-effect', 'typed-only']);
  });
});

/**
 * shared/core holds pure logic: I/O goes through ports its callers implement (shared/adapters). A core package's
 * shipped source imports no Redis, queue, Kubernetes, HTTP server or logger library (tests may, as devDependencies).
 */
const IO_PACKAGES = ['ioredis', 'bullmq', '@kubernetes/client-node', 'fastify', 'pino'];

describe('core packages are pure', () => {
  const cores = workspaces().filter((w) => relative(ROOT, w.dir).startsWith('shared/core/'));

  it('finds the core packages', () => {
    expect(cores.map((w) => w.name)).toEqual(expect.arrayContaining(['@gitops-gate/gate-core', '@gitops-gate/policy']));
  });

  for (const ws of cores) {
    it(`${ws.name}: neither its shipped source nor its runtime dependencies name an I/O library`, () => {
      const found: string[] = [];
      for (const file of sourceFiles(ws.dir)) {
        for (const name of importedPackages(readFileSync(file, 'utf8'))) {
          if (IO_PACKAGES.includes(name)) found.push(`${name} (imported by ${relative(ws.dir, file)})`);
        }
      }
      for (const name of Object.keys(ws.dependencies)) if (IO_PACKAGES.includes(name)) found.push(`${name} (dependency)`);
      expect(found).toEqual([]);
    });
  }
});
