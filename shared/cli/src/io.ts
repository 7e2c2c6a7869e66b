export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
}

/** Bad invocation or unreadable input: exit 2 with a one-line message, never a stack trace. */
export class UsageError extends Error {
  readonly code = 'USAGE';
}
