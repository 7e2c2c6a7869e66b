// GitHub's rate limits for installation-token requests: the hourly primary quota (403 once spent, until reset) and
// the secondary limit on writes (403 with retry-after), as the tests set them.
import type { Reply } from './reply.js';
import type { EmulatorState } from './state.js';

/** Takes this request's share of the quota; answers (and returns the status) when a limit refuses it. */
export function takeQuota(s: EmulatorState, method: string, reply: Reply): number | undefined {
  if (s.now() / 1000 >= s.resetAt) {
    s.remaining = s.limit;
    s.resetAt = Math.floor(s.now() / 1000) + 3600;
  }
  if (s.remaining <= 0) {
    return reply(403, { message: 'API rate limit exceeded for installation.' });
  }
  s.remaining--;
  if ((method === 'POST' || method === 'PATCH') && s.secondary.n > 0) {
    s.secondary.n--;
    return reply(
      403,
      { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
      { 'retry-after': String(s.secondary.retryAfter) },
    );
  }
  return undefined;
}
