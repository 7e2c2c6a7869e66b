// The emulator's mutable state, one object passed explicitly to each handler (auth, quota, repository endpoints)
// and to the operator controls the tests call (failNext, setRemaining, renameRepo ...).
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { CheckRun, CommitStatus, EmulatedInstallation, EmulatedRepo, GitHubEmulator, GitHubEmulatorOptions, Token } from './types.js';

export interface EmulatorState {
  appId: number;
  key: KeyObject;
  now: () => number;
  /** Installation token lifetime, ms. */
  ttl: number;
  /** Primary limit per hour (x-ratelimit-limit). */
  limit: number;
  installations: EmulatedInstallation[];
  tokens: Map<string, Token>;
  checkRuns: CheckRun[];
  statuses: CommitStatus[];
  requests: GitHubEmulator['requests'];
  /** The next `n` requests answer `status` (failNext). */
  failures: { n: number; status: number };
  /** The next `n` writes get the secondary-limit 403 (secondaryLimit). */
  secondary: { n: number; retryAfter: number };
  remaining: number;
  /** Epoch seconds at which the primary quota resets. */
  resetAt: number;
  nextId: number;
  /** Base URL, known once listening (clone URLs carry it). */
  url: string;
}

export function createEmulatorState(opts: GitHubEmulatorOptions): EmulatorState {
  const now = opts.now ?? Date.now;
  const limit = opts.rateLimit ?? 5000;
  return {
    appId: opts.appId,
    key: typeof opts.appPublicKey === 'string' ? createPublicKey(opts.appPublicKey) : opts.appPublicKey,
    now,
    ttl: (opts.tokenTtlSeconds ?? 3600) * 1000,
    limit,
    // Copies: renameRepo/addRepo/removeRepo must not edit the caller's objects.
    installations: opts.installations.map((i) => ({ ...i, repositories: [...i.repositories] })),
    tokens: new Map(),
    checkRuns: [],
    statuses: [],
    requests: [],
    failures: { n: 0, status: 502 },
    secondary: { n: 0, retryAfter: 1 },
    remaining: limit,
    resetAt: Math.floor(now() / 1000) + 3600,
    nextId: 1000,
    url: '',
  };
}

/** A repository of any installation by owner/name (case-insensitive, as GitHub matches them). */
export function findRepo(s: EmulatorState, owner: string, name: string): { inst: EmulatedInstallation; repo: EmulatedRepo } | undefined {
  for (const inst of s.installations) {
    const r = inst.repositories.find((x) => x.owner.toLowerCase() === owner.toLowerCase() && x.name.toLowerCase() === name.toLowerCase());
    if (r) return { inst, repo: r };
  }
  return undefined;
}

/** An installation token that exists and has not expired. */
export function liveToken(s: EmulatorState, t: string): Token | undefined {
  const tok = s.tokens.get(t);
  return tok && tok.expiresAt > s.now() ? tok : undefined;
}

export function repoJson(r: EmulatedRepo, base: string): Record<string, unknown> {
  return {
    id: r.id,
    node_id: `R_${r.id}`,
    name: r.name,
    full_name: `${r.owner}/${r.name}`,
    owner: { login: r.owner },
    private: true,
    clone_url: `${base}/${r.owner}/${r.name}.git`,
    default_branch: r.defaultBranch ?? 'main',
  };
}
