/**
 * The gate's rules, as a pure function of (what the Application is on, what was verified, ancestry).
 */
export type DecisionAction = 'pin' | 'skip-same' | 'skip-older' | 'refuse-rewrite' | 'refuse-unverified';

export interface Decision {
  action: DecisionAction;
  reason: string;
}

const FULL_SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export interface DecideInput {
  /** Revisions currently in the tracking sources (usually one; several sources of one repo must agree). */
  current: (string | undefined)[];
  sha: string;
  verified: boolean;
  verdictReason: string;
  /** Whether `ancestor` is an ancestor of (or equal to) `descendant`. */
  isAncestor: (ancestor: string, descendant: string) => Promise<boolean>;
}

export async function decide(input: DecideInput): Promise<Decision> {
  if (!input.verified) return { action: 'refuse-unverified', reason: `commit not verified: ${input.verdictReason}` };
  const pinned = [...new Set(input.current.filter((r): r is string => r !== undefined && FULL_SHA.test(r)))];
  if (pinned.length > 0 && pinned.every((p) => p === input.sha)) return { action: 'skip-same', reason: 'already pinned to this commit' };
  for (const p of pinned) {
    if (p === input.sha) continue;
    if (await input.isAncestor(p, input.sha)) continue;
    if (await input.isAncestor(input.sha, p)) {
      return { action: 'skip-older', reason: `pinned commit ${p} already contains ${input.sha}: never move backwards` };
    }
    return { action: 'refuse-rewrite', reason: `${input.sha} does not descend from pinned ${p}: history was rewritten (force push)` };
  }
  // A branch name, HEAD or an empty revision: the first verified commit takes over; a descendant moves forward.
  return { action: 'pin', reason: pinned.length > 0 ? `fast-forward from ${pinned.join(',')}` : 'first verified commit pinned' };
}
