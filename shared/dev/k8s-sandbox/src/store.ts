/**
 * In-memory object storage with one global resourceVersion counter, like etcd's revision: every committed write gets
 * the next integer, and a bounded event history lets watches resume from a recent resourceVersion.
 */

export type Obj = Record<string, unknown> & { metadata: Meta };

export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  generateName?: string;
  [k: string]: unknown;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  rv: number;
  /** `${group}/${plural}` — versions of one resource share storage, as in the real server. */
  resource: string;
  object: Obj;
  /** The state before this write (MODIFIED/DELETED); watches use it to turn selector transitions into ADDED/DELETED. */
  prev?: Obj;
}

export interface Store {
  currentRv(): number;
  /** A watch may resume from any resourceVersion >= this; older ones have been compacted away. */
  oldestResumableRv(resource?: string): number;
  get(resource: string, namespace: string, name: string): Obj | undefined;
  /** Sorted by namespace then name, like etcd's key order. `namespace` undefined = all namespaces. */
  list(resource: string, namespace?: string): Obj[];
  /** Assigns the next resourceVersion to `obj` (in place), stores or removes it, records and publishes the event. */
  commit(resource: string, type: EventType, obj: Obj, prev?: Obj): StoreEvent;
  /** Events after `rv` for one resource, or null when `rv` is older than the kept history. */
  eventsSince(resource: string, rv: number): StoreEvent[] | null;
  subscribe(fn: (e: StoreEvent) => void): () => void;
}

function key(namespace: string, name: string): string {
  return `${namespace}\u0000${name}`;
}

/**
 * `watchHistory` bounds the resume history by count (like the apiserver's watch cache capacity), `watchHistoryMs` by
 * age (the watch cache keeps roughly the last 75 s); either way, a resume from before the kept history is a 410.
 * Like the apiserver's per-resource watch caches, a resume is refused only when an event of that resource after the
 * resume point was dropped. `now` is injectable for tests.
 */
export function createStore(opts: { watchHistory: number; watchHistoryMs?: number; startRv?: number; now?: () => number }): Store {
  const now = opts.now ?? Date.now;
  let rv = opts.startRv ?? 1;
  // Every event with rv > historyFloor is still in `history`.
  let historyFloor = rv;
  const history: Array<StoreEvent & { at: number }> = [];
  const buckets = new Map<string, Map<string, Obj>>();
  const subscribers = new Set<(e: StoreEvent) => void>();

  // Per resource: the newest dropped event; a resume from before it would miss it.
  const floors = new Map<string, number>();
  const dropOldest = () => {
    const dropped = history.shift();
    if (dropped) {
      historyFloor = dropped.rv;
      floors.set(dropped.resource, dropped.rv);
    }
  };
  const expire = () => {
    if (opts.watchHistoryMs === undefined) return;
    const cutoff = now() - opts.watchHistoryMs;
    while (history.length > 0 && history[0]!.at < cutoff) dropOldest();
  };

  const bucket = (resource: string): Map<string, Obj> => {
    let b = buckets.get(resource);
    if (!b) {
      b = new Map();
      buckets.set(resource, b);
    }
    return b;
  };

  return {
    currentRv: () => rv,
    oldestResumableRv: (resource) => (resource === undefined ? historyFloor : (floors.get(resource) ?? opts.startRv ?? 1)),
    get: (resource, namespace, name) => buckets.get(resource)?.get(key(namespace, name)),
    list(resource, namespace) {
      const all = [...(buckets.get(resource)?.values() ?? [])].filter(
        (o) => namespace === undefined || (o.metadata.namespace ?? '') === namespace,
      );
      return all.sort((a, b) => {
        const ka = key(a.metadata.namespace ?? '', a.metadata.name);
        const kb = key(b.metadata.namespace ?? '', b.metadata.name);
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      });
    },
    commit(resource, type, obj, prev) {
      rv += 1;
      obj.metadata.resourceVersion = String(rv);
      const k = key(obj.metadata.namespace ?? '', obj.metadata.name);
      if (type === 'DELETED') bucket(resource).delete(k);
      else bucket(resource).set(k, obj);
      const event: StoreEvent = prev ? { type, rv, resource, object: obj, prev } : { type, rv, resource, object: obj };
      history.push({ ...event, at: now() });
      while (history.length > opts.watchHistory) dropOldest();
      expire();
      for (const fn of [...subscribers]) fn(event);
      return event;
    },
    eventsSince(resource, since) {
      expire();
      if (since < (floors.get(resource) ?? opts.startRv ?? 1)) return null;
      return history.filter((e) => e.rv > since && e.resource === resource);
    },
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}
