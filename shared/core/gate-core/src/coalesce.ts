/**
 * Writes coalesced per Application (issue #15). When several verdicts for one branch are in flight in this gate for
 * the same Application, the newest forward one goes first: an older verdict whose commit the newer one's history
 * contains waits until the newer one is decided. If the newer one pinned, the older one then finds the Application
 * on a descendant and records `skip-older` without a write (the ancestry is already known from the newer verdict, so
 * no git call either); if the newer one did not pin (refused, waiting), the older one is decided as it would have been.
 * So nothing is lost and nothing moves backwards: the order changes, never the rules.
 */
import type { CommitVerdictJob } from '@gitops-gate/contracts';

export interface AncestryMemo {
  /** Remembers a verdict's commit and the recent ancestors it carries. */
  learn(v: Pick<CommitVerdictJob, 'sha' | 'ancestors'>): void;
  /**
   * Whether `ancestor` is an ancestor of (or equal to) `descendant`, when a remembered history proves it either way;
   * undefined when it does not (ask git).
   */
  known(ancestor: string, descendant: string): boolean | undefined;
}

/** Bounded (oldest forgotten first): a memo, not a store; a forgotten entry only costs a git call. */
export function createAncestryMemo(max = 2_000): AncestryMemo {
  const seen = new Map<string, Set<string>>();
  return {
    learn(v) {
      if (!v.ancestors || v.ancestors.length === 0) return;
      seen.delete(v.sha);
      seen.set(v.sha, new Set(v.ancestors));
      while (seen.size > max) seen.delete(seen.keys().next().value as string);
    },
    known(ancestor, descendant) {
      if (ancestor === descendant) return true;
      if (seen.get(descendant)?.has(ancestor)) return true;
      // Commits form a DAG: a commit whose ancestors include `descendant` is not itself an ancestor of it.
      if (seen.get(ancestor)?.has(descendant)) return false;
      return undefined;
    },
  };
}

interface InFlight {
  verdict: CommitVerdictJob;
  done: Promise<unknown>;
}

/** What a coalesced run returns when a newer verdict arrived while it waited for the Application's lock. */
export const YIELDED = Symbol('yielded');

export interface Coalescer {
  /**
   * Runs `fn` for `verdict` on Application `key`, after every newer in-flight verdict of its branch there. `fn` calls
   * `shouldYield()` once it holds the Application's lock and returns YIELDED (having written nothing) when it is true:
   * a newer verdict arrived while this one queued for the lock; this one then waits for it and runs again.
   */
  run<T>(key: string, verdict: CommitVerdictJob, fn: (shouldYield: () => boolean) => Promise<T | typeof YIELDED>): Promise<T>;
  /** Applications with verdicts in flight (tests). */
  size(): number;
}

/** `newer` is a descendant of `older` by the history `newer` carries (same repository and branch). */
function supersedes(newer: CommitVerdictJob, older: CommitVerdictJob): boolean {
  return (
    newer !== older &&
    newer.sha !== older.sha &&
    newer.repoUrl === older.repoUrl &&
    newer.branch === older.branch &&
    (newer.ancestors ?? []).includes(older.sha)
  );
}

export function createCoalescer(): Coalescer {
  const inflight = new Map<string, Set<InFlight>>();
  return {
    async run(key, verdict, fn) {
      let set = inflight.get(key);
      if (!set) inflight.set(key, (set = new Set()));
      const entries = set;
      let release!: () => void;
      const entry: InFlight = { verdict, done: new Promise<void>((r) => (release = r)) };
      entries.add(entry);
      const newer = () => [...entries].filter((e) => supersedes(e.verdict, verdict));
      try {
        for (;;) {
          // Acyclic: we wait only for descendants, and a descendant never waits for its ancestor.
          const ahead = newer();
          if (ahead.length > 0) await Promise.all(ahead.map((e) => e.done));
          const out = await fn(() => newer().length > 0);
          if (out !== YIELDED) return out;
        }
      } finally {
        release();
        entries.delete(entry);
        if (entries.size === 0 && inflight.get(key) === entries) inflight.delete(key);
      }
    },
    size: () => inflight.size,
  };
}
