// Lists every function, arrow function, method, accessor and constructor in shared/**/src and services/**/src (tests
// excluded) that is longer than N lines (default 150), with file:line and length (issue #11: a closure too big to hold
// in one's head). A long function is accepted when a `// size: <reason>` comment sits in the comment block directly
// above the line it starts on; every other one is a violation (exit code 1). test/architecture/function-size.test.ts
// runs the same check.
//
//   node tools/function-sizes.mjs [--max N] [--root DIR]
//
// Plain JavaScript: it uses the TypeScript 5 compiler API of the standalone lint toolchain (tools/lint; the project's
// TypeScript 7 has no compiler API), so it needs no build.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_MAX_LINES = 150;
const toolsDir = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = dirname(toolsDir);

/** The TypeScript compiler API of tools/lint (installed by `npm run lint` / tools/lint/ensure-installed.mjs). */
export function loadTypeScript() {
  const pkg = join(toolsDir, 'lint', 'node_modules', 'typescript', 'package.json');
  if (!existsSync(pkg)) throw new Error('tools/lint/node_modules/typescript is missing: run node tools/lint/ensure-installed.mjs');
  return createRequire(pkg)('typescript');
}

const SKIP_DIRS = new Set(['node_modules', 'dist', 'testdata']);

function walkTs(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) walkTs(p, out);
    } else if (/\.(c|m)?tsx?$/.test(e.name) && !/\.d\.(c|m)?ts$/.test(e.name) && !/\.test\.(c|m)?tsx?$/.test(e.name)) {
      out.push(p);
    }
  }
  return out;
}

/** Every non-test TypeScript source file under a `src` directory of shared/ and services/ (any depth of package). */
export function sourceFiles(root = REPO_ROOT) {
  const files = [];
  const visit = (dir, depth) => {
    if (!existsSync(dir) || depth > 4) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || SKIP_DIRS.has(e.name)) continue;
      const p = join(dir, e.name);
      if (e.name === 'src') walkTs(p, files);
      else visit(p, depth + 1);
    }
  };
  visit(join(root, 'shared'), 0);
  visit(join(root, 'services'), 0);
  return files.sort();
}

function nameOf(ts, node, sf) {
  if (node.name && !ts.isComputedPropertyName(node.name)) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const p = node.parent;
  if (p && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) {
    return p.name.getText(sf);
  }
  if (p && ts.isCallExpression(p)) return `<callback of ${p.expression.getText(sf).slice(0, 40)}>`;
  return '<anonymous>';
}

const FUNCTION_KINDS = (ts) =>
  new Set([
    ts.SyntaxKind.FunctionDeclaration,
    ts.SyntaxKind.FunctionExpression,
    ts.SyntaxKind.ArrowFunction,
    ts.SyntaxKind.MethodDeclaration,
    ts.SyntaxKind.Constructor,
    ts.SyntaxKind.GetAccessor,
    ts.SyntaxKind.SetAccessor,
  ]);

const SIZE_COMMENT = /^\/\/\s*size:\s*(\S.*)$/;

/**
 * The `// size:` reason in the comment block directly above `line` (0-based), if any. The block may mix line and
 * JSDoc comments; a blank or code line ends it, so a reason never carries over to a function further down.
 */
export function sizeReason(lines, line) {
  for (let i = line - 1; i >= 0; i--) {
    const t = (lines[i] ?? '').trim();
    const m = SIZE_COMMENT.exec(t);
    if (m) return m[1].trim();
    if (!(t.startsWith('//') || t.startsWith('/*') || t.startsWith('*'))) return undefined;
  }
  return undefined;
}

/**
 * Every function of one source text longer than `maxLines`, measured from its first token (after leading comments)
 * to its last line, both included. Nested functions are measured on their own as well.
 */
export function measureSource(ts, fileName, text, maxLines = DEFAULT_MAX_LINES) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const kinds = FUNCTION_KINDS(ts);
  const lines = text.split('\n');
  const found = [];
  const visit = (node) => {
    if (kinds.has(node.kind) && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const length = end - start + 1;
      if (length > maxLines) {
        // The reason goes above the statement that starts on the function's first line (e.g. `export const x = () =>`).
        const reason = sizeReason(lines, start);
        found.push({ file: fileName, line: start + 1, length, name: nameOf(ts, node, sf), ...(reason ? { reason } : {}) });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The long functions of the repository; `reason` set on the accepted ones. Paths are relative to `root`, with `/`. */
export function findLongFunctions({ root = REPO_ROOT, maxLines = DEFAULT_MAX_LINES, ts = loadTypeScript() } = {}) {
  const out = [];
  for (const file of sourceFiles(root)) {
    const rel = relative(root, file).split(sep).join('/');
    out.push(...measureSource(ts, rel, readFileSync(file, 'utf8'), maxLines));
  }
  return out;
}

export function formatReport(found, maxLines = DEFAULT_MAX_LINES) {
  const open = found.filter((f) => !f.reason);
  const lines = found
    .slice()
    .sort((a, b) => b.length - a.length)
    .map(
      (f) =>
        `${f.reason ? 'accepted ' : 'TOO LONG '} ${String(f.length).padStart(4)} lines  ${f.file}:${f.line}  ${f.name}${f.reason ? `  (size: ${f.reason})` : ''}`,
    );
  lines.push(`${found.length} function(s) over ${maxLines} lines, ${open.length} without a // size: reason`);
  return lines.join('\n');
}

function main(argv) {
  let maxLines = DEFAULT_MAX_LINES;
  let root = REPO_ROOT;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') maxLines = Number(argv[++i]);
    else if (argv[i] === '--root') root = argv[++i];
    else {
      process.stderr.write(`usage: node tools/function-sizes.mjs [--max N] [--root DIR]\n`);
      return 2;
    }
  }
  if (!Number.isInteger(maxLines) || maxLines < 1) {
    process.stderr.write('--max needs a positive integer\n');
    return 2;
  }
  const found = findLongFunctions({ root, maxLines });
  process.stdout.write(`${formatReport(found, maxLines)}\n`);
  return found.some((f) => !f.reason) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
