import { BaseError } from '@gitops-gate/contracts/errors';

/** Every code an OciError carries (registry answers, references, and the per-job budget and deadline). */
export const OCI_ERROR_CODES = [
  'DIGEST_MISMATCH',
  'INSECURE_REDIRECT',
  'INVALID_DIGEST',
  'INVALID_REFERENCE',
  'INVALID_RESPONSE',
  'NOT_FOUND',
  'REGISTRY_ERROR',
  'REGISTRY_FORBIDDEN',
  'REGISTRY_NETWORK',
  'REGISTRY_RATE_LIMITED',
  'REGISTRY_UNAUTHORIZED',
  'REGISTRY_UNAVAILABLE',
  'TOO_LARGE',
  'IMAGE_MATERIAL_TOO_LARGE',
  'IMAGE_VERIFY_DEADLINE',
] as const;
export type OciErrorCode = (typeof OCI_ERROR_CODES)[number];

/**
 * Registry failures. `transient` separates "ask again later" (5xx, 429, network trouble) from answers that will not
 * change on retry (404, 401, bytes that do not hash to their digest, oversized or malformed documents).
 */
export class OciError extends BaseError<OciErrorCode> {
  readonly transient: boolean;
  readonly status?: number;
  constructor(code: OciErrorCode, message: string, opts: { transient?: boolean; status?: number; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.transient = opts.transient ?? false;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

export function isTransient(err: unknown): boolean {
  return err instanceof OciError && err.transient;
}

/** One image job read more registry bytes than its budget allows (or only oversized signature material was found). */
export const IMAGE_MATERIAL_TOO_LARGE = 'IMAGE_MATERIAL_TOO_LARGE' satisfies OciErrorCode;
/** One image job ran past its deadline (a slow or stalling registry). */
export const IMAGE_VERIFY_DEADLINE = 'IMAGE_VERIFY_DEADLINE' satisfies OciErrorCode;
/**
 * Rejections worth remembering for a while (not for ever: the registry may be fixed): repeating them would cost a
 * verifier the whole budget or deadline again on every package event for the same digest.
 */
export const COSTLY_REJECTIONS: ReadonlySet<string> = new Set([IMAGE_MATERIAL_TOO_LARGE, IMAGE_VERIFY_DEADLINE]);

/** Bytes one image job may still read from registries; shared by every request the job makes. */
export interface ByteBudget {
  readonly limit: number;
  used: number;
}

export function createByteBudget(limit: number): ByteBudget {
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError('byte budget must be a positive integer');
  return { limit, used: 0 };
}

/** Per-job limits a registry request honours: the job's byte budget and its deadline. */
export interface JobLimits {
  budget?: ByteBudget;
  signal?: AbortSignal;
}
