/**
 * Lost-webhook recovery: every interval, list the heads of the branches that opted-in Applications follow (`git
 * ls-remote`) and queue a verification for any head that no decision covers yet. A missed delivery or a receiver
 * outage delays a pin; it never loses it. One gate replica runs it per interval (a Redis lease).
 */
import type { Redis } from 'ioredis';
import { normalizeRepoUrl, type FollowedRepo } from '@gitops-gate/contracts';
import type { Logger } from '@gitops-gate/telemetry';
import { appKey, BRANCH_ANNOTATION, readRevision, findTrackingApps, type Application } from './applications.js';
import type { AuditTrail } from './audit.js';
import type { ApplicationStore } from './kube.js';

export interface ReconcileTarget {
  repoUrl: string;
  cloneUrl: string;
  branch: string;
  sha: string;
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
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** The server-side followed set (collectFollowedRepos): heads are listed only there, from its fetchUrl. */
  followed: (apps: Application[]) => FollowedRepo[];
}): Reconciler {
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
          deps.logger.warn({ repo: w.repoUrl, err: (err as Error).message }, 'reconcile: cannot list heads');
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
      const target = { repoUrl: w.repoUrl, cloneUrl: w.cloneUrl, branch: w.branch, sha };
      await deps.enqueue(target);
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
      const got = await deps.redis.set(`${deps.prefix}:reconcile-lease`, String(process.pid), 'PX', Math.max(intervalMs - 100, 100), 'NX');
      if (got === 'OK') await runOnce();
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'reconcile pass failed');
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
