/**
 * Lost webhooks: with the receiver down, a push produces no delivery at all; the gate's periodic reconcile (git
 * ls-remote of followed branches) finds the undecided head and the pin still arrives.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAppReader,
  DEMO_APP,
  gateUrlOf,
  waitForDecision,
  type DemoFixture,
  type Stack,
  startDemoStack,
  type DemoStack,
} from '@gitops-gate/local-stack';

let demo: DemoStack | undefined;
let stack: Stack;
let fx: DemoFixture;

beforeAll(async () => {
  demo = await startDemoStack({
    name: 'rec',
    env: { GATE_RECONCILE_SECONDS: '1' },
  });
  ({ stack, fx } = demo);
}, 120_000);
afterAll(() => demo?.stop());

describe('reconcile', () => {
  it('a push made while the receiver is down is pinned anyway, and decided once', async () => {
    const receiver = stack.processes.find((p) => p.service === 'receiver')!;
    receiver.child.kill('SIGTERM');
    await new Promise((r) => receiver.child.once('exit', r));
    const sha = fx.repo.commit('pushed during an outage', { signWith: fx.key });
    fx.repo.push();
    const readApp = createAppReader(stack.kubeconfig);
    const deadline = Date.now() + 30_000;
    while ((await readApp(DEMO_APP.namespace, DEMO_APP.name)).revision !== sha) {
      if (Date.now() > deadline) throw new Error('reconcile did not pin the head');
      await sleep(50);
    }
    const d = await waitForDecision(gateUrlOf(stack), sha);
    expect(d.action).toBe('pin');
    // One delivery id per repository, branch and head (and queueing): `reconcile-<sha prefix>-<key>-<time>`.
    expect(d.deliveryId).toMatch(new RegExp(`^reconcile-${sha.slice(0, 12)}-[0-9a-f]{24}-[0-9a-z]+$`));
    // The receiver comes back; further passes do not decide the same head again.
    await stack.spawnService('receiver');
    await sleep(2_500);
    const { decisions } = (await (await fetch(`${gateUrlOf(stack)}/api/decisions?sha=${sha}`)).json()) as { decisions: unknown[] };
    expect(decisions).toHaveLength(1);
  });
});
