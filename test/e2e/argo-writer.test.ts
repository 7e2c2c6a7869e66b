/**
 * The pipeline while "Argo CD" writes the same Applications (#18.3): a background writer patches status, runs sync
 * bursts and PUTs whole objects at an aggressive rate (each Application every 50–150 ms instead of 120–180 s), and
 * every verified push must still end pinned on every Application, with conflicts bounded. Count-based: nothing here
 * depends on how fast the machine is.
 */
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoApplication } from '@gitops-gate/k8s-sandbox';
import {
  DEMO_REPO_URL,
  gateUrlOf,
  sendPush,
  waitForDecision,
  type DemoFixture,
  type Stack,
  startDemoStack,
  type DemoStack,
} from '@gitops-gate/local-stack';

const NS = 'argocd';
const APPS = Array.from({ length: 6 }, (_, i) => `argo-${i}`);
const PUSHES = 8;

let demo: DemoStack | undefined;
let stack: Stack;
let fx: DemoFixture;
const logs: string[] = [];

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${gateUrlOf(stack)}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(labels)) sum += Number(line.split(' ').pop());
  return sum;
}

beforeAll(async () => {
  demo = await startDemoStack({
    name: 'argo',
    onLog: (service, line) => logs.push(`${service} ${line}`),
    argoWriter: {
      namespace: NS,
      intervalMs: [50, 150],
      syncProbability: 0.3,
      burst: 3,
      burstGapMs: 10,
      putProbability: 0.3,
      putDelayMs: 3,
    },
    withFixture: (fx) => ({
      seed: [...APPS.map((name) => demoApplication({ name, namespace: NS, repoURL: DEMO_REPO_URL, branch: 'main' })), fx.policy],
    }),
  });
  ({ stack, fx } = demo);
}, 120_000);
afterAll(() => demo?.stop());

describe('gate and a busy Argo CD writing the same Applications', () => {
  it('every verified push is pinned on every Application: no pin lost, conflicts bounded, Argo CD status kept', async () => {
    const shas: string[] = [];
    for (let i = 0; i < PUSHES; i++) {
      const sha = fx.repo.commit(`c${i}`, { signWith: fx.key });
      fx.repo.push();
      expect((await sendPush(stack, sha, shas.at(-1))).status).toBe(202);
      shas.push(sha);
      // One push at a time: each must end as a pin on every Application, none as an error or a retry-later.
      for (const app of APPS)
        expect((await waitForDecision(gateUrlOf(stack), sha, { app: `${NS}/${app}`, timeoutMs: 30_000 })).action).toBe('pin');
    }
    const writer = stack.argoWriter!;
    await writer.stop();
    const stats = writer.stats();
    const pins = await metric('gitops_gate_decisions_total', 'action="pin"');
    const conflicts = await metric('gitops_gate_kube_conflicts_total');
    const errors = await metric('gitops_gate_decisions_total', 'action="error"');

    const kc = new KubeConfig();
    kc.loadFromFile(stack.kubeconfig);
    const api = kc.makeApiClient(CustomObjectsApi);
    const last = shas.at(-1)!;
    for (const name of APPS) {
      const app = (await api.getNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'applications',
        name,
      })) as {
        metadata: { annotations?: Record<string, string> };
        spec: { source?: { targetRevision?: string } };
        status?: { reconciledAt?: string };
      };
      // No pin lost: no PUT of a copy read before the pin put the old revision back.
      expect(app.spec.source?.targetRevision).toBe(last);
      expect(app.metadata.annotations?.['gitops-gate.io/verified-sha']).toBe(last);
      // And the gate did not clobber Argo CD's status either.
      expect(app.status?.reconciledAt).toBeDefined();
    }
    // The writer really raced the gate: status patches and whole-object PUTs landed throughout.
    expect(stats.statusPatches).toBeGreaterThan(APPS.length * PUSHES);
    expect(stats.puts).toBeGreaterThan(0);
    expect(stats.errors).toBe(0);
    // Every push pinned every Application exactly once, none gave up after its conflict retries.
    expect(pins).toBe(APPS.length * PUSHES);
    expect(errors).toBe(0);
    // Bounded: the gate never conflicts with itself (one writer per Application), so every conflict is a foreign
    // write landing in a read → patch window, and re-reading absorbs it: at most one conflict per foreign write.
    expect(conflicts).toBeLessThanOrEqual(stats.statusPatches + stats.puts);
    console.log(
      `argo writer e2e: ${pins} pins, ${conflicts} conflicts (${(conflicts / pins).toFixed(2)} per pin); writer ${JSON.stringify(stats)}`,
    );
  }, 300_000);
});
