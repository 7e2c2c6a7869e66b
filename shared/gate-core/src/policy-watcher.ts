/**
 * GatePolicy objects (gitops-gate.io/v1alpha1) watched through @kubernetes/client-node's informer (list + watch, and a
 * relist when the watch expires). A change takes effect without a restart: every valid policy is compiled, invalid
 * ones get a `Ready=False` status condition naming the problem and are not applied, and the valid set is published
 * for the verifiers (which have no Kubernetes access) through `onChange`.
 */
import { createHash } from 'node:crypto';
import { CustomObjectsApi, makeInformer, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { compilePolicy, policiesFor, type CompiledPolicy } from '@gitops-gate/commit-verify';
import { normalizeRepoUrl } from '@gitops-gate/contracts';
import type { Logger } from '@gitops-gate/telemetry';
import type { LivePolicy } from './policies.js';

export const POLICY_GROUP = 'gitops-gate.io';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_PLURAL = 'gatepolicies';

type PolicyObject = KubernetesObject & { spec?: unknown; status?: { observedGeneration?: number; conditions?: Condition[] } };

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface PolicySet {
  revision: string;
  compiled: CompiledPolicy[];
  /** The valid objects as the API returned them (what the verifiers compile). */
  objects: object[];
}

export interface PolicyWatcher {
  start(): Promise<void>;
  stop(): Promise<void>;
  current(): PolicySet;
  live(): LivePolicy[];
}

export function toLivePolicy(p: CompiledPolicy): LivePolicy {
  return {
    name: p.name,
    generation: p.generation,
    mode: p.mode,
    selector: p.selector,
    governs: (repoUrl, branch) => policiesFor([p], repoUrl, branch, normalizeRepoUrl).length > 0,
  };
}

function revisionOf(objects: PolicyObject[]): string {
  const ids = objects.map((o) => `${o.metadata?.namespace}/${o.metadata?.name}@${o.metadata?.generation ?? 0}`).sort();
  return createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 16);
}

export function createPolicyWatcher(opts: {
  kc: KubeConfig;
  logger: Logger;
  onChange: (set: PolicySet) => Promise<void> | void;
  now?: () => Date;
}): PolicyWatcher {
  const api = opts.kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const now = opts.now ?? (() => new Date());
  const informer = makeInformer<PolicyObject>(
    opts.kc,
    `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${POLICY_PLURAL}`,
    () => api.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL }) as never,
  );
  let set: PolicySet = { revision: revisionOf([]), compiled: [], objects: [] };
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();

  async function writeStatus(obj: PolicyObject, ok: boolean, message: string): Promise<void> {
    const generation = obj.metadata?.generation;
    const prev = obj.status?.conditions?.find((c) => c.type === 'Ready');
    const status = ok ? 'True' : 'False';
    // Writing the same status again would trigger another watch event and another write: only write changes.
    if (obj.status?.observedGeneration === generation && prev?.status === status && prev.message === message) return;
    const condition: Condition = {
      type: 'Ready',
      status,
      reason: ok ? 'Valid' : 'Invalid',
      message,
      observedGeneration: generation,
      lastTransitionTime: prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now().toISOString(),
    };
    try {
      await api.patchNamespacedCustomObjectStatus(
        {
          group: POLICY_GROUP, version: POLICY_VERSION, plural: POLICY_PLURAL,
          namespace: obj.metadata?.namespace ?? 'default', name: obj.metadata?.name ?? '',
          body: { status: { observedGeneration: generation, conditions: [condition] } },
        },
        mergePatch,
      );
    } catch (err) {
      opts.logger.warn({ policy: obj.metadata?.name, err: (err as Error).message }, 'policy status not written');
    }
  }

  async function recompute(): Promise<void> {
    const objects = informer.list();
    const compiled: CompiledPolicy[] = [];
    const valid: PolicyObject[] = [];
    for (const obj of objects) {
      const where = `GatePolicy ${obj.metadata?.namespace}/${obj.metadata?.name}`;
      try {
        compiled.push(await compilePolicy(obj, where));
        valid.push(obj);
        await writeStatus(obj, true, 'policy is valid and applied');
      } catch (err) {
        opts.logger.warn({ policy: `${obj.metadata?.namespace}/${obj.metadata?.name}`, err: (err as Error).message }, 'policy invalid, not applied');
        await writeStatus(obj, false, (err as Error).message);
      }
    }
    const revision = revisionOf(valid);
    if (revision === set.revision) return;
    set = { revision, compiled, objects: valid.map(({ status: _s, ...o }) => o) };
    opts.logger.info({ revision, policies: compiled.map((p) => `${p.name}@${p.generation ?? '-'}:${p.mode}`) }, 'policies changed');
    await opts.onChange(set);
  }

  // Events arrive faster than compiling; run recomputes one after another, each over the whole cache.
  const schedule = () => {
    chain = chain.then(recompute).catch((err: unknown) => opts.logger.error({ err: (err as Error).message }, 'policy recompute failed'));
  };
  informer.on('add', schedule);
  informer.on('update', schedule);
  informer.on('delete', schedule);
  informer.on('connect', schedule);
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    opts.logger.warn({ err: (err as Error | undefined)?.message }, 'policy watch interrupted, restarting');
    // The informer stops on errors (API server restart, network): start it again after a pause.
    setTimeout(() => {
      if (!stopped) void informer.start().catch(() => undefined);
    }, 1_000);
  });

  return {
    async start() {
      await informer.start();
      schedule();
      await chain;
    },
    async stop() {
      stopped = true;
      await informer.stop();
    },
    current: () => set,
    live: () => set.compiled.map(toLivePolicy),
  };
}
