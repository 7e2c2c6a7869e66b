/**
 * Issue #11: no src function over 150 lines without a reason written next to it (`// size: <reason>` in the comment
 * block directly above it). The repository check, and the checker itself on sources made to trip it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_LINES,
  findLongFunctions,
  loadTypeScript,
  measureSource,
  sourceFiles,
  type LongFunction,
} from '../../tools/function-sizes.mjs';

const ts = loadTypeScript();

let scanned: LongFunction[] | undefined;
/** The repository scan, once for both repository checks (it parses every src file). */
const repoFindings = (): LongFunction[] => (scanned ??= findLongFunctions({ ts }));

/** A function exactly `lines` long (head, statements, return, closing brace), with `above` written over it. */
function source(lines: number, above: string[] = [], head = 'export function big(): number {'): string {
  const body = Array.from({ length: lines - 3 }, (_, i) => `  const v${i} = ${i};`);
  return [...above, head, ...body, '  return 0;', '}', ''].join('\n');
}

describe('function sizes (issue #11)', () => {
  it(`every src function over ${DEFAULT_MAX_LINES} lines carries a // size: reason`, () => {
    const open = repoFindings().filter((f) => f.reason === undefined);
    expect(open.map((f) => `${f.file}:${f.line} ${f.name} (${f.length} lines)`)).toEqual([]);
  });

  it('measures from the first token to the last line and flags only what is over the limit', () => {
    expect(measureSource(ts, 'a.ts', source(151))).toEqual([{ file: 'a.ts', line: 1, length: 151, name: 'big' }]);
    expect(measureSource(ts, 'a.ts', source(150))).toEqual([]);
    // Leading comments are not the function's lines; the line reported is its first token's.
    expect(measureSource(ts, 'a.ts', source(150, ['/** Docs. */', '// more']))).toEqual([]);
    expect(measureSource(ts, 'a.ts', source(151, ['/** Docs. */']))[0]?.line).toBe(2);
  });

  it('sees arrow functions, methods and nested functions, each on its own', () => {
    const arrow = measureSource(ts, 'a.ts', source(151, [], 'export const make = (): number => {'));
    expect(arrow.map((f) => [f.name, f.length])).toEqual([['make', 151]]);
    const method = `class K {\n${source(151, [], '  run(): number {')}}\n`;
    expect(measureSource(ts, 'a.ts', method).map((f) => [f.name, f.length])).toEqual([['run', 151]]);
    const nested = `export function outer(): void {\n${source(151, [], 'const inner = function (): number {')}}\n`;
    expect(measureSource(ts, 'a.ts', nested).map((f) => [f.name, f.length])).toEqual([
      ['outer', 153],
      ['inner', 151],
    ]);
    const callback = source(151, [], "app.get('/x', () => {").replace(/\}\n$/, '});\n');
    expect(measureSource(ts, 'a.ts', callback).map((f) => f.name)).toEqual(['<callback of app.get>']);
  });

  it('accepts a // size: reason in the comment block directly above, and nowhere else', () => {
    const reasoned = measureSource(ts, 'a.ts', source(151, ['// size: one state machine, read top to bottom']));
    expect(reasoned).toMatchObject([{ name: 'big', reason: 'one state machine, read top to bottom' }]);
    // With a JSDoc block between the reason and the function: still directly above.
    const withDoc = measureSource(ts, 'a.ts', source(151, ['// size: generated table', '/**', ' * Docs.', ' */']));
    expect(withDoc[0]?.reason).toBe('generated table');
    // Attacker: a reason that belongs to something else (a blank line or code in between) does not carry over.
    expect(measureSource(ts, 'a.ts', source(151, ['// size: for the function above', '']))[0]?.reason).toBeUndefined();
    expect(measureSource(ts, 'a.ts', source(151, ['// size: x', 'const z = 1;']))[0]?.reason).toBeUndefined();
    // An empty reason is no reason; nor is one inside the function.
    expect(measureSource(ts, 'a.ts', source(151, ['// size:']))[0]?.reason).toBeUndefined();
    expect(measureSource(ts, 'a.ts', source(151).replace('  return 0;', '  // size: inside\n  return 0;'))[0]?.reason).toBeUndefined();
  });

  describe('which files it reads', () => {
    const root = mkdtempSync(join(tmpdir(), 'function-sizes-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    it('reads src of shared/ and services/ packages at any depth, never tests, builds or testdata', () => {
      const files: Record<string, string> = {
        'shared/core/a/src/x.ts': source(151),
        'shared/cli/src/deep/y.ts': source(151),
        'services/gate/src/z.ts': source(151),
        'services/gate/src/z.test.ts': source(151),
        'services/gate/src/types.d.ts': 'export declare function f(): void;\n',
        'services/gate/src/testdata/t.ts': source(151),
        'services/gate/dist/z.ts': source(151),
        'shared/core/a/bench/b.ts': source(151),
        'test/e2e/w.ts': source(151),
      };
      for (const [p, text] of Object.entries(files)) {
        mkdirSync(join(root, p, '..'), { recursive: true });
        writeFileSync(join(root, p), text);
      }
      expect(sourceFiles(root).map((f) => f.slice(root.length + 1))).toEqual([
        'services/gate/src/z.ts',
        'shared/cli/src/deep/y.ts',
        'shared/core/a/src/x.ts',
      ]);
      expect(findLongFunctions({ root, ts }).map((f) => f.file)).toEqual([
        'services/gate/src/z.ts',
        'shared/cli/src/deep/y.ts',
        'shared/core/a/src/x.ts',
      ]);
    });
  });
});
