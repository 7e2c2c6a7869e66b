/**
 * Ancestry from commit objects read through the mirror's persistent `cat-file --batch` (no `rev-list` or `merge-base`
 * process): parents and committer time parsed once and remembered (commits are immutable), walks bounded. A walk that
 * hits its bound or an unreadable commit answers `undefined`, and the caller asks git itself — never a guess.
 */
import { SHA } from './git-exec.js';

export interface CommitNode {
  parents: string[];
  time: number;
}

export interface CommitGraph {
  node(dir: string, sha: string): Promise<CommitNode | null>;
  /** true/false when the walk from `descendant` settled it; undefined when it gave up (bound, unreadable commit). */
  isAncestor(dir: string, ancestor: string, descendant: string): Promise<boolean | undefined>;
  /** Up to `max` commits reachable from `sha`, newest committer time first (rev-list's default order); undefined as above. */
  recent(dir: string, sha: string, max: number): Promise<string[] | undefined>;
}

/** Parents and committer time from raw commit bytes (header lines up to the first blank line). */
export function parseCommitNode(raw: Buffer): CommitNode {
  const end = raw.indexOf('\n\n');
  const header = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1');
  const parents: string[] = [];
  let time = 0;
  for (const line of header.split('\n')) {
    if (line.startsWith('parent ')) {
      const p = line.slice(7).trim();
      if (SHA.test(p)) parents.push(p);
    } else if (line.startsWith('committer ')) {
      const m = / (\d+) [+-]\d{4}$/.exec(line);
      if (m) time = Number(m[1]);
    }
  }
  return { parents, time };
}

export function createCommitGraph(
  read: (dir: string, sha: string) => Promise<Buffer | null>,
  opts: { maxWalk?: number; maxRemembered?: number } = {},
): CommitGraph {
  const maxWalk = opts.maxWalk ?? 20_000;
  const maxRemembered = opts.maxRemembered ?? 200_000;
  const nodes = new Map<string, CommitNode>();

  async function node(dir: string, sha: string): Promise<CommitNode | null> {
    const key = `${dir}\0${sha}`;
    const hit = nodes.get(key);
    if (hit) return hit;
    const raw = await read(dir, sha);
    if (!raw) return null;
    const n = parseCommitNode(raw);
    nodes.set(key, n);
    if (nodes.size > maxRemembered) nodes.delete(nodes.keys().next().value as string);
    return n;
  }

  return {
    node,
    async isAncestor(dir, ancestor, descendant) {
      if (ancestor === descendant) return true;
      const seen = new Set<string>([descendant]);
      let frontier = [descendant];
      // Breadth first, a whole generation per round: the reads of one round are pipelined on the one cat-file.
      while (frontier.length > 0) {
        const read = await Promise.all(frontier.map((s) => node(dir, s)));
        const next: string[] = [];
        for (const n of read) {
          if (!n) return undefined;
          for (const p of n.parents) {
            if (p === ancestor) return true;
            if (seen.has(p)) continue;
            seen.add(p);
            next.push(p);
          }
        }
        if (seen.size > maxWalk) return undefined;
        frontier = next;
      }
      return false;
    },
    async recent(dir, sha, max) {
      const out: string[] = [];
      const first = await node(dir, sha);
      if (!first) return undefined;
      // Newest first, like `rev-list`: a small sorted queue of discovered commits (bounded by max + parents).
      const queue: { sha: string; time: number }[] = [{ sha, time: first.time }];
      const seen = new Set<string>([sha]);
      while (queue.length > 0 && out.length < max) {
        const top = queue.shift()!;
        out.push(top.sha);
        const n = await node(dir, top.sha);
        if (!n) return undefined;
        const parents = n.parents.filter((p) => !seen.has(p));
        const read = await Promise.all(parents.map((p) => node(dir, p)));
        for (const [i, p] of parents.entries()) {
          const pn = read[i];
          if (!pn) return undefined;
          seen.add(p);
          const at = queue.findIndex((q) => q.time < pn.time);
          queue.splice(at < 0 ? queue.length : at, 0, { sha: p, time: pn.time });
        }
        if (queue.length > max) queue.length = max;
      }
      return out;
    },
  };
}
