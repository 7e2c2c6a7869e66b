/** Every rejection carries a stable string code (for metrics and callers) and a one-line human reason. */
export class VerifyError extends Error {
  readonly code: string;
  constructor(code: string, reason: string) {
    super(reason);
    this.name = 'VerifyError';
    this.code = code;
  }
}

export function reject(code: string, reason: string): never {
  throw new VerifyError(code, reason);
}
