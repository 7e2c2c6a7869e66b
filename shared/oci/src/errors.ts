/**
 * Registry failures. `transient` separates "ask again later" (5xx, 429, network trouble) from answers that will not
 * change on retry (404, 401, bytes that do not hash to their digest, oversized or malformed documents).
 */
export class OciError extends Error {
  readonly code: string;
  readonly transient: boolean;
  readonly status?: number;
  constructor(code: string, message: string, opts: { transient?: boolean; status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OciError';
    this.code = code;
    this.transient = opts.transient ?? false;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

export function isTransient(err: unknown): boolean {
  return err instanceof OciError && err.transient;
}
