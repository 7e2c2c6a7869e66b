/**
 * Lost-webhook recovery: every interval, list the heads of the branches that opted-in Applications follow (`git
 * ls-remote`) and queue a verification for any head that no final decision covers yet (a `deferred-*` record — Rekor
 * or the git host was down, the commit was not replicated yet — is not final). A missed delivery, a receiver outage or
 * transient trouble that outlasted the verifier's retries delays a pin; it never loses it. One gate replica runs it
 * per interval (a lease: ReconcileMarks, in Redis by @gitops-gate/gate-store's createReconcileMarks).
 */
import { createHash } from 'node:crypto';
import { normalizeRepoUrl, type FollowedRepo, type VerifyCommitJob } from '@gitops-gate/contracts';
import { buildCommitVerifyJob, ContractError } from '@gitops-gate/contracts/verify-jobs';
import type { GateLogger } from './logger.js';
import { appKey, BRANCH_ANNOTATION, readRevision, findTrackingApps, type Application } from './applications.js';
import type { AuditTrail } from './audit.js';
import type { ApplicationStore } from './application-store.js';

export interface ReconcileTarget {
  repoUrl: string;
  cloneUrl: string;
  branch: string;
  sha: string;
  /** Unique per repository, branch, head and queueing (see reconcileDeliveryId). */
  deliveryId: string;
}

/**
 * One key per (repository, branch, head). The same commit is often the head of several branches (a release cut from
 * main) or repositories (a fork): a key of the SHA alone let the first one's job stand in for all of them.
 */
export function reconcileKey(t: { repoUrl: string; branch: string; sha: string }): string {
  return createHash('sha256')
    .update(`${normalizeRepoUrl(t.repoUrl)}\0${t.branch}\0${t.sha}`)
    .digest('hex')
    .slice(0, 24);
}

/**
 * A delivery id per queueing (BullMQ job ids may not contain ':'; delivery ids are [A-Za-z0-9-]): a head queued again
 * after a deferral must not collide with its earlier job or verdict, which BullMQ keeps for a while and would silently
 * de-duplicate against.
 */
export function reconcileDeliveryId(t: { repoUrl: string; branch: string; sha: string }, at: number): string {
  return `reconcile-${t.sha.slice(0, 12)}-${reconcileKey(t)}-${at.toString(36)}`;
}

/** The verify job for a reconciled head, and its BullMQ job id. */
export function reconcileJob(t: ReconcileTarget, now: Date = new Date()): { data: VerifyCommitJob; jobId: string } {
  return buildCommitVerifyJob({
    deliveryId: t.deliveryId,
    repoUrl: t.repoUrl,
    cloneUrl: t.cloneUrl,
    branch: t.branch,
    sha: t.sha,
    receivedAt: now,
  });
}

/** The shared marks that keep gate replicas from doing a pass's work twice. */
export interface ReconcileMarks {
  /** Marks a head (by reconcileKey) as queued for ttlMs unless it already is; false: it already is. */
  markQueued(key: string, ttlMs: number): Promise<boolean>;
  /** Drops a head's mark (its job could not be queued: the next pass tries again). */
  unmarkQueued(key: string): Promise<void>;
  /** Takes the lease of one pass for ttlMs unless another replica holds it; false: it does. */
  takeLease(ttlMs: number): Promise<boolean>;
}

export interface Reconciler {
  /** One pass; returns the heads it queued. */
  runOnce(): Promise<ReconcileTarget[]>;
  start(intervalMs: number): void;
  stop(): void;
}

export function createReconciler(deps: {
  store: ApplicationStore;
  namespaces: string[];
  listHeads: (cloneUrl: string) => Promise<Map<string, string>>;
  audit: AuditTrail;
  enqueue: (target: ReconcileTarget) => Promise<void>;
  marks: ReconcileMarks;
  logger: GateLogger;
  /**
   * How long a queued head is left to its verification (the verify job's retries with backoff) before a pass may
   * queue it again while it is still not covered; default 10 minutes.
   */
  requeueAfterMs?: number;
  now?: () => number;
  /** The server-side followed set (collectFollowedRepos): heads are listed only there, from its fetchUrl. */
  followed: (apps: Application[]) => FollowedRepo[];
}): Reconciler {
  const requeueAfterMs = deps.requeueAfterMs ?? 10 * 60_000;
  const now = deps.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function runOnce(): Promise<ReconcileTarget[]> {
    const apps = await deps.store.list(deps.namespaces);
    // Distinct (repository, branch) pairs that some opted-in Application follows.
    const wanted = new Map<string, { repoUrl: string; cloneUrl: string; branch: string; apps: Application[] }>();
    for (const app of apps) {
      const branch = app.metadata.annotations?.[BRANCH_ANNOTATION];
      if (!branch) continue;
      const sources = app.spec?.sources?.length ? app.spec.sources : app.spec?.source ? [app.spec.source] : [];
      for (const s of sources) {
        if (!s.repoURL) continue;
        const repoUrl = normalizeRepoUrl(s.repoURL);
        const key = `${repoUrl}#${branch}`;
        const entry = wanted.get(key) ?? { repoUrl, cloneUrl: s.repoURL, branch, apps: [] };
        entry.apps.push(app);
        wanted.set(key, entry);
      }
    }
    const queued: ReconcileTarget[] = [];
    const headsByClone = new Map<string, Map<string, string>>();
    // Same list, same URLs as the verifier: a refused repository (host outside the credential scope) is not contacted.
    const followed = new Map(deps.followed(apps).map((r) => [r.repoUrl, r]));
    for (const w of wanted.values()) {
      const repo = followed.get(w.repoUrl);
      if (!repo || repo.refused) continue;
      w.cloneUrl = repo.fetchUrl;
      let heads = headsByClone.get(w.cloneUrl);
      if (!heads) {
        try {
          heads = await deps.listHeads(w.cloneUrl);
        } catch (err) {
          deps.logger.warn({ repo: w.repoUrl, err }, 'reconcile: cannot list heads');
          continue;
        }
        headsByClone.set(w.cloneUrl, heads);
      }
      const sha = heads.get(w.branch);
      if (!sha) continue;
      // Covered when every following Application is already on it or has a decision about it. An index lookup: this
      // runs for every followed branch every interval, and the stream only grows.
      const decided = await deps.audit.decidedApps(sha);
      const pending = w.apps.filter((a) => {
        const t = findTrackingApps([a], w.repoUrl, w.branch)[0];
        const onIt = t?.refs.every((r) => readRevision(a, r) === sha) ?? false;
        return !onIt && !decided.has(appKey(a));
      });
      if (pending.length === 0) continue;
      const head = { repoUrl: w.repoUrl, branch: w.branch, sha };
      // One queueing per head at a time: a head still being verified (or retried) is not queued again every pass.
      const inFlight = reconcileKey(head);
      if (!(await deps.marks.markQueued(inFlight, requeueAfterMs))) continue;
      const target = { ...head, cloneUrl: w.cloneUrl, deliveryId: reconcileDeliveryId(head, now()) };
      try {
        await deps.enqueue(target);
      } catch (err) {
        // A repository whose URL names no owner/name cannot get a job: skip it (its in-flight mark bounds the
        // warning to one per requeue interval) rather than stop reconciling every other repository.
        if (err instanceof ContractError) {
          deps.logger.warn({ err, repo: w.repoUrl, branch: w.branch }, 'reconcile: head not queued, repository name refused');
          continue;
        }
        await deps.marks.unmarkQueued(inFlight).catch(() => undefined);
        throw err;
      }
      queued.push(target);
      deps.logger.info({ repo: w.repoUrl, branch: w.branch, sha, apps: pending.map(appKey) }, 'reconcile: head without a decision queued');
    }
    return queued;
  }

  async function tick(intervalMs: number): Promise<void> {
    if (running) return;
    running = true;
    try {
      // A lease slightly shorter than the interval: one replica per interval, and a dead replica's turn passes on.
      if (await deps.marks.takeLease(Math.max(intervalMs - 100, 100))) await runOnce();
    } catch (err) {
      deps.logger.warn({ err }, 'reconcile pass failed');
    } finally {
      running = false;
    }
  }

  return {
    runOnce,
    start(intervalMs) {
      timer = setInterval(() => void tick(intervalMs), intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
