// Types of tools/function-sizes.mjs (plain JavaScript: it runs without a build), for test/architecture.
export interface LongFunction {
  /** Path relative to the scanned root, with `/`. */
  file: string;
  /** 1-based line of the function's first token. */
  line: number;
  /** Lines from the first token to the last line, both included. */
  length: number;
  name: string;
  /** The `// size:` reason above it; absent = a violation. */
  reason?: string;
}
/** The TypeScript 5 compiler API module of tools/lint. */
export type TypeScriptApi = unknown;
export const DEFAULT_MAX_LINES: number;
export const REPO_ROOT: string;
export function loadTypeScript(): TypeScriptApi;
export function sourceFiles(root?: string): string[];
export function sizeReason(lines: string[], line: number): string | undefined;
export function measureSource(ts: TypeScriptApi, fileName: string, text: string, maxLines?: number): LongFunction[];
export function findLongFunctions(options?: { root?: string; maxLines?: number; ts?: TypeScriptApi }): LongFunction[];
export function formatReport(found: LongFunction[], maxLines?: number): string;
