/**
 * Which rejections are not about the commit's bytes. A verdict with one of these codes must never be cached, and the
 * transient ones must not become a final decision: the verifier retries them with backoff and, when they outlast the
 * retries, reports the commit as deferred (the gate records `deferred-transient`, and reconcile queues it again).
 */

/** Something the verifier depends on was unavailable: the same bytes may verify a minute later. */
export const TRANSIENT_VERDICT_CODES: ReadonlySet<string> = new Set(['REKOR_UNAVAILABLE']);

/**
 * Rejections that may only mean an index has not caught up yet (Rekor lists a new entry with a delay): retried while
 * the job has attempts left, a final rejection after the last one — and never cached.
 */
export const LAGGING_VERDICT_CODES: ReadonlySet<string> = new Set(['GITSIGN_TLOG_ENTRY_NOT_FOUND']);

/**
 * Rejections that depend on the verifier's clock (a GPG signature "from the future" becomes valid once that time has
 * passed; an expiry check is made against now): correct now, wrong later, so never cached.
 */
export const TIME_DEPENDENT_VERDICT_CODES: ReadonlySet<string> = new Set(['GPG_SIGNATURE_FROM_FUTURE', 'GPG_SIGNATURE_EXPIRED']);

/**
 * Rejections that depend on the verifier's configuration or on an unexpected internal error rather than on the bytes
 * (no Rekor client configured yet; a verification that threw): final for this decision, but not worth remembering.
 */
const ENVIRONMENT_VERDICT_CODES: ReadonlySet<string> = new Set([
  'GITSIGN_NEEDS_ONLINE_LOOKUP',
  'GITSIGN_REKOR_LOOKUP_FAILED',
  'GITSIGN_VERIFY_ERROR',
  'GPG_VERIFY_FAILED',
  'SSH_VERIFY_ERROR',
]);

/**
 * Rejections for what this verifier version cannot check (a key or certificate type it does not support): a newer
 * version may verify the same bytes, so a cached one must not outlive an upgrade.
 */
export const VERSION_DEPENDENT_VERDICT_CODES: ReadonlySet<string> = new Set(['SSH_KEY_TYPE_UNSUPPORTED', 'SSH_CERT_UNSUPPORTED']);

export function isTransientVerdictCode(code: string): boolean {
  return TRANSIENT_VERDICT_CODES.has(code);
}

/** Whether a rejection is worth another attempt: transient, or possibly a lagging index. */
export function isRetryableVerdictCode(code: string): boolean {
  return TRANSIENT_VERDICT_CODES.has(code) || LAGGING_VERDICT_CODES.has(code);
}

/** Whether a rejection with this code may be cached under the commit bytes, policy and trust root alone. */
export function isCacheableRejection(code: string): boolean {
  return (
    !isRetryableVerdictCode(code) &&
    !TIME_DEPENDENT_VERDICT_CODES.has(code) &&
    !ENVIRONMENT_VERDICT_CODES.has(code) &&
    !VERSION_DEPENDENT_VERDICT_CODES.has(code)
  );
}
