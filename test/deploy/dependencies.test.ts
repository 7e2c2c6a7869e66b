/**
 * Every workspace's package.json lists as runtime `dependencies` exactly the packages its shipped source imports, and
 * test-only packages only in devDependencies: a missing one breaks an installed build (it only worked by hoisting), an
 * unused one is installed and audited in production for nothing.
 *
 * Shipped source = src/**\/*.ts without tests (`*.test.ts`, `test-*.ts`) and without `src/testing/` (helpers for tests).
 * Imports are static and dynamic `import`/`export … from`, `import('…')`, `require('…')` and `require.resolve('…')`.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importedPackages, listWorkspaces, shippedSourceFiles } from '../lib/workspaces.js';

// Node built-ins imported without the node: prefix would be flagged as missing packages; none are in use today.
const BUILTINS = new Set(['fs', 'path', 'crypto', 'os', 'url', 'util', 'child_process', 'http', 'https', 'net', 'stream', 'events']);

describe('package.json dependencies match what src imports', () => {
  const all = listWorkspaces();

  it('finds the workspaces and their sources', () => {
    expect(all.length).toBeGreaterThanOrEqual(20);
    expect(all.map((w) => w.name)).toContain('@gitops-gate/bundle-verify');
    expect(all.map((w) => w.name)).toContain('@gitops-gate/gate-store');
  });

  for (const ws of all) {
    it(`${ws.name}: runtime dependencies are exactly the shipped imports`, () => {
      const used = new Map<string, string>();
      for (const file of shippedSourceFiles(ws.dir)) {
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
