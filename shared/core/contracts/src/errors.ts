/**
 * The one error shape of the project (after sigstore-js' `BaseError<Code>`): a stable string `code` callers and
 * metrics switch on, a one-line human message, and an optional `cause` so logs keep the whole chain. Each package
 * declares its own code union and exports it, e.g.
 *
 *   export const GIT_ERROR_CODES = ['GIT_FETCH_FAILED', 'GIT_BAD_REF'] as const;
 *   export type GitErrorCode = (typeof GIT_ERROR_CODES)[number];
 *   export class GitError extends BaseError<GitErrorCode> {}
 *
 * This module imports nothing, so the pure verification cores can depend on it.
 */
export class BaseError<Code extends string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    // new.target keeps the subclass name without each subclass repeating it.
    this.name = new.target.name;
  }
}

/** True when `err` is a BaseError carrying one of `codes` (narrowing the code for the caller). */
export function hasCode<Code extends string>(err: unknown, codes: readonly Code[]): err is BaseError<Code> {
  return err instanceof BaseError && (codes as readonly string[]).includes((err as BaseError<string>).code);
}
