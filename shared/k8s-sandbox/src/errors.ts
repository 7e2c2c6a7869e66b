/** Errors the sandbox itself raises (bad options, bad seed) as opposed to API Status answers. */
export class SandboxError extends Error {
  constructor(
    readonly code: 'INVALID_KIND' | 'INVALID_FAULT' | 'UNKNOWN_KIND' | 'INVALID_SEED' | 'LISTEN_FAILED' | 'INVALID_WATCH_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}
