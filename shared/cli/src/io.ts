import { BaseError } from '@gitops-gate/contracts/errors';

export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
}

/** Bad invocation or unreadable input: exit 2 with a one-line message, never a stack trace. */
export const CLI_ERROR_CODES = ['USAGE'] as const;
export class UsageError extends BaseError<(typeof CLI_ERROR_CODES)[number]> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, options);
  }
}
