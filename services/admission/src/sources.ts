/**
 * The decision's inputs, kept cheap for the hot path: the policies in force (the gate's snapshot in Redis, compiled
 * only when its revision changes, refreshed on a timer), the commits the gate has pinned per destination namespace
 * (from the Applications' `gitops-gate.io/verified-sha`), and the stored image results (one pipelined round trip).
 */
import type { Redis } from 'ioredis';
import { compilePolicy } from '@gitops-gate/policy';
import { policySnapshotKey, policySnapshotSchema } from '@gitops-gate/contracts';
import type { Application, StoredImageResult } from '@gitops-gate/gate-core';
import type { Logger } from '@gitops-gate/telemetry';
import { admissionPolicyOf, destinationOf, policiesForNamespace, type AdmissionPolicy } from './decide.js';

export const VERIFIED_SHA_ANNOTATION = 'gitops-gate.io/verified-sha';

export interface PolicyCache {
  refresh(): Promise<void>;
  current(): AdmissionPolicy[];
  revision(): string;
}

/** Reads the snapshot the gate publishes for the verifiers (the same objects, identities and generations). */
export function createPolicyCache(redis: Redis, prefix: string, logger: Logger): PolicyCache {
  let rev = '';
  let lastRaw = '';
  let policies: AdmissionPolicy[] = [];
  return {
    current: () => policies,
    revision: () => rev,
    async refresh() {
      const raw = await redis.get(policySnapshotKey(prefix));
      // Unchanged bytes: nothing to parse. This runs every second on the thread that answers reviews, and validating
      // a large snapshot each time would stall them.
      if (raw === null || raw === lastRaw) return;
      lastRaw = raw;
      const snap = policySnapshotSchema.safeParse(JSON.parse(raw));
      // A corrupt snapshot keeps what was in force (fail closed: never drop to "no policy").
      if (!snap.success) return void logger.error({ issues: snap.error.issues.slice(0, 2) }, 'policy snapshot unreadable');
      if (snap.data.revision === rev) return;
      const next: AdmissionPolicy[] = [];
      for (const obj of snap.data.policies) {
        try {
          const meta = obj.metadata as { name?: unknown; annotations?: Record<string, string> } | undefined;
          next.push(admissionPolicyOf(await compilePolicy(obj, `${String(obj.kind)} ${String(meta?.name)}`, 'object'), meta?.annotations));
        } catch (err) {
          logger.error({ err }, 'published policy does not compile');
        }
      }
      policies = next;
      rev = snap.data.revision;
      logger.info(
        { revision: rev, policies: next.map((p) => `${p.identity.name}@${p.identity.generation ?? '-'}:${p.mode}`) },
        'admission policies reloaded',
      );
    },
  };
}

/** Destination namespace → commits the gate pinned there (an Application's verified-sha, while it is pinned to it). */
export function pinnedByNamespace(apps: Application[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const app of apps) {
    const sha = app.metadata.annotations?.[VERIFIED_SHA_ANNOTATION];
    const dest = destinationOf(app);
    if (!sha || !dest || !/^[0-9a-f]{40}$/.test(sha)) continue;
    const set = out.get(dest) ?? new Set<string>();
    set.add(sha);
    out.set(dest, set);
  }
  return out;
}

/** HGETALL of every build in one pipeline (gate-store's image-state.ts `image-results:<repository>@<digest>`). */
export function createResultLookup(redis: Redis, prefix: string): (builds: string[]) => Promise<Map<string, StoredImageResult[]>> {
  return async (builds) => {
    const p = redis.pipeline();
    for (const b of builds) p.hgetall(`${prefix}:image-results:${b}`);
    const replies = (await p.exec()) ?? [];
    const out = new Map<string, StoredImageResult[]>();
    builds.forEach((b, i) => {
      const [err, value] = replies[i] ?? [new Error('no reply'), null];
      // A failed read is an error, not "no verdict": the API server then applies failurePolicy (Fail).
      if (err) throw err;
      out.set(
        b,
        Object.values((value ?? {}) as Record<string, string>).map((j) => JSON.parse(j) as StoredImageResult),
      );
    });
    return out;
  };
}

export interface AdmissionInputs {
  /** Re-reads the policy snapshot and the Applications; re-indexes only when either changed. */
  refresh(): Promise<void>;
  /** True once the gate's snapshot exists and the Applications were listed: never answer from an empty policy set. */
  ready(): boolean;
}

/** Keeps `index` in step with the policies and the Applications; main.ts calls `refresh` once a second. */
export function createAdmissionInputs(
  policies: PolicyCache,
  listApps: () => Promise<Application[]>,
  index: NamespaceIndex,
): AdmissionInputs {
  let appsKey = '';
  let ready = false;
  return {
    ready: () => ready,
    async refresh() {
      const before = policies.revision();
      await policies.refresh();
      const list = await listApps();
      const key = list.map((a) => `${a.metadata.namespace}/${a.metadata.name}@${a.metadata.resourceVersion ?? ''}`).join(',');
      if (key !== appsKey || policies.revision() !== before) {
        appsKey = key;
        index.update(policies.current(), list);
      }
      if (policies.revision() !== '') ready = true;
    },
  };
}

export interface NamespaceIndex {
  /** Called when the policies or the Applications change; drops the per-namespace memo. */
  update(policies: AdmissionPolicy[], apps: Application[]): void;
  policiesFor(namespace: string): AdmissionPolicy[];
  pinned(namespace: string): ReadonlySet<string>;
}

/** Per-namespace policies and pins, computed once per change (the hot path does a Map lookup). */
export function createNamespaceIndex(): NamespaceIndex {
  let policies: AdmissionPolicy[] = [];
  let apps: Application[] = [];
  let pins = new Map<string, Set<string>>();
  let memo = new Map<string, AdmissionPolicy[]>();
  const none: ReadonlySet<string> = new Set();
  return {
    update(p, a) {
      policies = p;
      apps = a;
      pins = pinnedByNamespace(a);
      memo = new Map();
    },
    policiesFor(ns) {
      let got = memo.get(ns);
      if (!got) {
        got = policiesForNamespace(policies, ns, apps);
        memo.set(ns, got);
      }
      return got;
    },
    pinned: (ns) => pins.get(ns) ?? none,
  };
}
