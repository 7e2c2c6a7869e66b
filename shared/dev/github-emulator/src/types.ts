// The emulator's public shapes: its options, what it records (check runs, statuses, requests) and its controls.
import type { KeyObject } from 'node:crypto';

export interface EmulatedRepo {
  id: number;
  owner: string;
  name: string;
  defaultBranch?: string;
}

export interface EmulatedInstallation {
  id: number;
  account: string;
  repositories: EmulatedRepo[];
}

export interface CheckRun {
  id: number;
  repo: string;
  head_sha: string;
  name: string;
  status: string;
  conclusion: string | null;
  details_url?: string;
  external_id?: string;
  output?: { title?: string; summary?: string; text?: string };
  /** Every state it went through (create and each update), oldest first. */
  history: { status: string; conclusion: string | null; summary?: string }[];
}

export interface CommitStatus {
  id: number;
  repo: string;
  sha: string;
  state: string;
  context: string;
  description?: string;
  target_url?: string;
}

export interface GitHubEmulatorOptions {
  appId: number;
  /** PEM of the App's public key (GitHub keeps only this half). */
  appPublicKey: string | KeyObject;
  installations: EmulatedInstallation[];
  tokenTtlSeconds?: number;
  /** Primary limit per token per hour (x-ratelimit-limit). */
  rateLimit?: number;
  now?: () => number;
}

export interface GitHubEmulator {
  url: string;
  checkRuns: CheckRun[];
  statuses: CommitStatus[];
  /** Method and path of every request, with its answer. */
  requests: { method: string; path: string; status: number }[];
  /** Whether a token is a live installation token (the git host asks). */
  tokenValid(token: string): boolean;
  /** Installation id a token belongs to (undefined = unknown or expired). */
  tokenInstallation(token: string): number | undefined;
  /** The next n requests answer `status` (default 502). */
  failNext(n: number, status?: number): void;
  /** The next n write requests (POST/PATCH) get GitHub's secondary-limit 403 with `retry-after`. */
  secondaryLimit(n: number, retryAfterSeconds: number): void;
  /** Sets the remaining primary quota (0 = every request gets the primary-limit 403 until reset). */
  setRemaining(n: number, resetInSeconds?: number): void;
  /** Renames or moves a repository: same id, new owner/name (GitHub keeps the id). */
  renameRepo(id: number, owner: string, name: string): void;
  /** Adds a repository (e.g. a new one re-created under a deleted one's name: a different id). */
  addRepo(installationId: number | undefined, repo: EmulatedRepo): void;
  removeRepo(id: number): void;
  close(): Promise<void>;
}

export interface Token {
  installationId: number;
  expiresAt: number;
}
