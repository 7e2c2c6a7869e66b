/**
 * The gate's only way into Kubernetes (gate-core's ApplicationStore port): list, get and resourceVersion-guarded
 * patches of Applications through @kubernetes/client-node: the pin is an RFC 6902 JSON patch (see gate-core's
 * pinPatch), other writers may send a merge patch. API errors become gate-core's KubeError with a code the gate can
 * act on.
 */
import { createHash } from 'node:crypto';
import { ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { KubeError, kubeErrorCodeOf, type Application, type ApplicationStore } from '@gitops-gate/gate-core';

interface ApplicationList {
  items?: Application[];
}

const GROUP = 'argoproj.io';
const VERSION = 'v1alpha1';
const PLURAL = 'applications';

function toKubeError(err: unknown, what: string): KubeError {
  if (err instanceof ApiException) {
    const status = err.code;
    let message = `${what}: HTTP ${status}`;
    try {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: unknown } | null | undefined;
      if (typeof body?.message === 'string' && body.message !== '') message = `${what}: ${body.message}`;
    } catch {
      // body was not JSON; keep the status line
    }
    return new KubeError(kubeErrorCodeOf(status), status, message);
  }
  // Connection refused, reset, DNS: the API server is away for now.
  return new KubeError('UNAVAILABLE', 0, `${what}: ${(err as Error).message ?? String(err)}`);
}

export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromCluster();
  return kc;
}

const reusing = new WeakSet<KubeConfig>();

/**
 * @kubernetes/client-node (1.x) builds a new undici Agent for every request, so every GET and PATCH opened a new TLS
 * connection (a handshake on both sides: most of the gate's CPU per pin in the fan-out benchmark). Here the Agent is
 * kept per (cluster, user, TLS material), as client-go keeps one transport: requests reuse kept-alive connections.
 * Credentials that change per request (exec/OIDC tokens) travel in headers, not in the Agent, so they still refresh;
 * a rotated client certificate is different TLS material, so it gets a new Agent.
 */
export function reuseKubeConnections(kc: KubeConfig): KubeConfig {
  if (reusing.has(kc)) return kc;
  reusing.add(kc);
  // createDispatcher is private in the typings; it is the one place the Agent is built.
  const target = kc as unknown as { createDispatcher: (cluster: unknown, agentOptions: Record<string, unknown>) => unknown };
  const original = target.createDispatcher.bind(kc);
  const agents = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const c = cluster as { name?: string; server?: string } | null;
    const material = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'].map((k) => {
      const v = agentOptions[k];
      return Buffer.isBuffer(v) ? createHash('sha256').update(v).digest('hex') : v === undefined ? null : JSON.stringify(v);
    });
    const key = JSON.stringify([c?.name ?? null, c?.server ?? null, kc.getCurrentUser()?.name ?? null, material]);
    if (!agents.has(key)) agents.set(key, original(cluster, agentOptions));
    return agents.get(key);
  };
  return kc;
}

export function createKubeApplicationStore(kc: KubeConfig): ApplicationStore {
  const api = reuseKubeConnections(kc).makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
  return {
    async list(namespaces) {
      try {
        if (namespaces.length === 0) {
          // The generated client types custom-object lists as `any`: name the shape once here.
          const res = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as ApplicationList;
          return res.items ?? [];
        }
        const lists = (await Promise.all(
          namespaces.map((namespace) => api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })),
        )) as ApplicationList[];
        return lists.flatMap((l) => l.items ?? []);
      } catch (err) {
        throw toKubeError(err, 'list applications');
      }
    },
    async get(namespace, name) {
      try {
        return (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as Application;
      } catch (err) {
        throw toKubeError(err, `get application ${namespace}/${name}`);
      }
    },
    async patch(namespace, name, body) {
      try {
        return (await api.patchNamespacedCustomObject(
          { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body, fieldManager: 'gitops-gate' },
          Array.isArray(body) ? jsonPatch : mergePatch,
        )) as Application;
      } catch (err) {
        throw toKubeError(err, `patch application ${namespace}/${name}`);
      }
    },
  };
}
