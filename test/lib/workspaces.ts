/**
 * The workspaces as the root package.json declares them, and a scanner for what their source imports. Shared by the
 * dependency test (test/deploy) and the layout test (test/architecture), so both read the same list: a package added
 * under a new group is seen by both or by neither.
 *
 * Shipped source = src/**\/*.ts without tests (`*.test.ts`, `test-*.ts`) and without `src/testing/` (helpers for tests).
 * Imports are static and dynamic `import`/`export … from`, `import('…')`, `require('…')` and `require.resolve('…')`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type WorkspaceKind = 'core' | 'adapter' | 'dev' | 'cli' | 'service';

export interface Workspace {
  /** Absolute directory. */
  dir: string;
  /** Directory relative to the repository root, e.g. `shared/core/policy`. */
  path: string;
  name: string;
  description: string | undefined;
  kind: WorkspaceKind;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

interface PackageJson {
  name?: string;
  description?: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** The kind follows from the directory: the layout is the classification. */
export function kindOf(path: string): WorkspaceKind {
  if (path.startsWith('shared/core/')) return 'core';
  if (path.startsWith('shared/adapters/')) return 'adapter';
  if (path.startsWith('shared/dev/')) return 'dev';
  if (path === 'shared/cli') return 'cli';
  if (path.startsWith('services/')) return 'service';
  throw new Error(`workspace ${path} is in no known group`);
}

/** Expands the root package.json's `workspaces` (plain directories and `dir/*` patterns, as npm does). */
export function listWorkspaces(root: string = ROOT): Workspace[] {
  const paths: string[] = [];
  for (const pattern of readPackage(root).workspaces ?? []) {
    if (pattern.endsWith('/*')) {
      const base = pattern.slice(0, -2);
      for (const entry of readdirSync(join(root, base)).sort()) {
        if (existsSync(join(root, base, entry, 'package.json'))) paths.push(`${base}/${entry}`);
      }
    } else if (existsSync(join(root, pattern, 'package.json'))) {
      paths.push(pattern);
    }
  }
  return paths.map((path) => {
    const dir = join(root, path);
    const pkg = readPackage(dir);
    return {
      dir,
      path,
      name: pkg.name ?? path,
      description: pkg.description,
      kind: kindOf(path),
      dependencies: pkg.dependencies ?? {},
      devDependencies: pkg.devDependencies ?? {},
    };
  });
}

function isShipped(path: string): boolean {
  return path.endsWith('.ts') && !path.endsWith('.d.ts') && !path.endsWith('.test.ts') && !/(^|\/)test-[^/]*\.ts$/.test(path);
}

/** The shipped source files of a workspace (see the header for what counts). */
export function shippedSourceFiles(dir: string): string[] {
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

/** Every specifier a text imports, as written (relative, `node:` and bare ones alike); comments do not count. */
export function importedSpecifiers(text: string): Set<string> {
  // Comments may quote import lines (examples in docs); only code counts.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out = new Set<string>();
  for (const re of IMPORT_PATTERNS) {
    for (const m of code.matchAll(re)) out.add(m[1]!);
  }
  return out;
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for relative and node: ones. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export function importedPackages(text: string): Set<string> {
  const out = new Set<string>();
  for (const specifier of importedSpecifiers(text)) {
    const name = packageOf(specifier);
    if (name !== undefined) out.add(name);
  }
  return out;
}
