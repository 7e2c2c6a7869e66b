/**
 * Out of order and concurrent: verdicts for one Application arrive shuffled at three gate processes at once; the
 * Application ends on the newest commit, every pin moves forward along history, and no write is lost or doubled.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitVerdictJob, verdictJobId } from '@gitops-gate/contracts';
import {
  createAppReader,
  DEMO_APP,
  DEMO_REPO_URL,
  gateUrlOf,
  type DemoFixture,
  type Stack,
  startDemoStack,
  type DemoStack,
} from '@gitops-gate/local-stack';
import { createGateQueue, createRedisConnection, gateJobOptions } from '@gitops-gate/queue';
import { type TestRedis } from '@gitops-gate/testing';

let demo: DemoStack | undefined;
let redis: TestRedis;
let stack: Stack;
let fx: DemoFixture;
const prefix = `ord-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  demo = await startDemoStack({
    name: 'ord',
    gates: 3,
    queuePrefix: prefix,
    env: { GATE_CONCURRENCY: '4' },
  });
  ({ redis, stack, fx } = demo);
}, 120_000);
afterAll(() => demo?.stop());

describe('three gate processes, shuffled verdicts', () => {
  it('ends on the newest commit, never moving backwards, each pin recorded once', async () => {
    const shas = Array.from({ length: 12 }, (_, i) => fx.repo.commit(`c${i}`, { signWith: fx.key }));
    fx.repo.push();
    const conn = createRedisConnection(redis.url, 'worker');
    const gateQueue = createGateQueue(conn, prefix);
    const shuffled = [...shas].sort(() => Math.random() - 0.5);
    // A result counts only under the identity of the live policy object (scope, namespace, uid, generation).
    const kc = new KubeConfig();
    kc.loadFromFile(stack.kubeconfig);
    const live = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'gitops-gate.io',
      version: 'v1alpha1',
      plural: 'gatepolicies',
      namespace: 'argocd',
      name: 'demo-signers',
    })) as {
      metadata: { uid: string; generation: number };
    };
    await Promise.all(
      shuffled.map((sha) => {
        const v = commitVerdictJob.parse({
          v: 1,
          kind: 'commit-verdict',
          deliveryId: randomUUID(),
          repoUrl: 'https://github.com/demo/app',
          cloneUrl: DEMO_REPO_URL,
          repoFullName: 'demo/app',
          branch: 'main',
          sha,
          outcome: 'verified',
          method: 'ssh',
          signer: { identity: 'dev@example.com' },
          code: 'VERIFIED',
          reasons: [],
          verifiedAt: new Date().toISOString(),
          onBranch: true,
          branchHead: sha,
          policies: [
            {
              name: 'argocd/demo-signers',
              scope: 'Namespaced',
              namespace: 'argocd',
              uid: live.metadata.uid,
              generation: live.metadata.generation,
              mode: 'Enforce',
              selector: { namespaces: ['argocd'] },
              ok: true,
              code: 'VERIFIED',
            },
          ],
        });
        return gateQueue.add(v.kind, v, { ...gateJobOptions, jobId: verdictJobId(v) });
      }),
    );
    const readApp = createAppReader(stack.kubeconfig);
    const newest = shas[shas.length - 1]!;
    const deadline = Date.now() + 60_000;
    let decisions: { sha: string; action: string; previousRevision: string; time: string }[] = [];
    while (Date.now() < deadline) {
      const res = (await (await fetch(`${gateUrlOf(stack)}/api/decisions?app=argocd/demo-app&limit=100`)).json()) as {
        decisions: typeof decisions;
      };
      decisions = res.decisions;
      if (decisions.length >= shas.length) break;
      await sleep(50);
    }
    expect(decisions).toHaveLength(shas.length);
    expect((await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision).toBe(newest);
    // Every pin moved forward: its previous revision is older in history than the pinned sha.
    const pins = decisions.filter((d) => d.action === 'pin').reverse();
    let last = -1;
    for (const p of pins) {
      const at = shas.indexOf(p.sha);
      expect(at).toBeGreaterThan(last);
      last = at;
    }
    for (const d of decisions.filter((x) => x.action !== 'pin')) expect(['skip-older', 'skip-same']).toContain(d.action);
    // Several processes really took part.
    const gatesThatDecided = new Set<string>();
    for (const p of stack.processes.filter((x) => x.service === 'gate')) {
      const metrics = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
      if (/gitops_gate_decisions_total\{[^}]*\} [1-9]/.test(metrics)) gatesThatDecided.add(p.name);
    }
    expect(gatesThatDecided.size).toBeGreaterThan(1);
    await gateQueue.close();
    conn.disconnect();
  });
});
