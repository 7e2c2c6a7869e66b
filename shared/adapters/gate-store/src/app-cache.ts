/**
 * The Applications the gate looks through for every verdict, kept by informers (list once, then watch; relist when
 * the watch expires) instead of a LIST per verdict — an Argo CD installation can hold thousands. The cache only finds
 * candidates: every decision still re-reads the Application under its lock, so a stale cache cannot cause a wrong
 * write, only a missed candidate, which the periodic reconcile catches.
 */
import { CustomObjectsApi, makeInformer, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '@gitops-gate/telemetry';
import type { Application, ApplicationStore } from '@gitops-gate/gate-core';

export interface CachedApplicationStore extends ApplicationStore {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCachedApplicationStore(
  kc: KubeConfig,
  base: ApplicationStore,
  namespaces: string[],
  logger: Logger,
): CachedApplicationStore {
  const api = kc.makeApiClient(CustomObjectsApi);
  const scopes = namespaces.length > 0 ? namespaces : [undefined];
  let stopped = false;
  const informers = scopes.map((namespace) => {
    const path = namespace ? `/apis/argoproj.io/v1alpha1/namespaces/${namespace}/applications` : '/apis/argoproj.io/v1alpha1/applications';
    const list = () =>
      (namespace
        ? api.listNamespacedCustomObject({ group: 'argoproj.io', version: 'v1alpha1', namespace, plural: 'applications' })
        : api.listClusterCustomObject({ group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' })) as never;
    const informer = makeInformer<KubernetesObject>(kc, path, list);
    const state = { informer, synced: false };
    informer.on('connect', () => {
      state.synced = true;
    });
    informer.on('error', (err: unknown) => {
      state.synced = false;
      if (stopped) return;
      logger.warn({ namespace, err }, 'application watch interrupted, restarting');
      setTimeout(() => {
        if (!stopped) void informer.start().catch(() => undefined);
      }, 1_000);
    });
    return state;
  });
  return {
    ...base,
    async list(ns) {
      // Until every informer has listed, ask the API server directly.
      if (!informers.every((i) => i.synced)) return base.list(ns);
      const all = informers.flatMap((i) => i.informer.list()) as unknown as Application[];
      return ns.length === 0 ? all : all.filter((a) => ns.includes(a.metadata.namespace ?? 'default'));
    },
    peek(ns, name) {
      if (!informers.every((i) => i.synced)) return undefined;
      for (const i of informers) {
        const app = i.informer.get(name, ns) as unknown as Application | undefined;
        if (app) return app;
      }
      return undefined;
    },
    async start() {
      await Promise.all(
        informers.map(async (i) => {
          await i.informer.start();
          i.synced = true;
        }),
      );
    },
    async stop() {
      stopped = true;
      await Promise.all(informers.map((i) => i.informer.stop()));
    },
  };
}
