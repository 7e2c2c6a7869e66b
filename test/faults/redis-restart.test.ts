/**
 * Redis crashes (SIGKILL) in the middle of a burst of deliveries and comes back from its AOF. The receiver promises
 * "202 once the job is in Redis": every delivery it answered 202 must survive the crash and be decided. While Redis
 * is down it must answer 503 with Retry-After at once (GitHub gives up after 10 s), and GitHub's redelivery of those
 * (same delivery id, same bytes) must be decided too.
 *
 * "Decided" means: the gate's audit trail holds a decision (pin, skip-*, refuse-*) carrying that delivery id. Every
 * verdict for a tracked branch produces exactly such a record, so a delivery without one was lost somewhere between
 * the receiver's 202 and the gate.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditTrail } from '@gitops-gate/gate-store';
import {
  APP_KEY,
  countBy,
  deliverPush,
  neverBackwards,
  pool,
  startPipelineHarness,
  waitFor,
  type Answer,
  type Harness,
} from './lib/harness.js';

const N = 200;
const CONCURRENCY = 16;

let h: Harness;

beforeAll(async () => {
  h = await startPipelineHarness();
}, 120_000);

afterAll(async () => {
  await h?.close();
});

interface Delivery {
  sha: string;
  before?: string;
  delivery: string;
  answers: Answer[];
  phase: string;
}

describe('Redis restart (SIGKILL, AOF) during a burst of deliveries', () => {
  it(`every 202 of ${N} deliveries is decided; 503 + Retry-After while Redis is down; redelivered 503s are decided`, async () => {
    const shas = h.commits(N, { label: 'burst' });
    const ds: Delivery[] = shas.map((sha, i) => ({ sha, before: shas[i - 1], delivery: randomUUID(), answers: [], phase: '' }));
    const send = async (d: Delivery, phase: string): Promise<void> => {
      d.phase ||= phase;
      d.answers.push(await deliverPush(h, d));
    };
    const last = (d: Delivery) => d.answers[d.answers.length - 1]!;

    // Phase 1: Redis up; after 40 answers it is killed while the other deliveries of the phase are in flight.
    let crash: Promise<void> | undefined;
    let answered = 0;
    await pool(ds.slice(0, 80), CONCURRENCY, async (d) => {
      await send(d, 'crash');
      if (++answered === 40) crash = h.redis.stop(true);
    });
    await crash;

    // Phase 2: Redis is down (its process has exited): every delivery gets 503 with Retry-After, at once.
    const down = ds.slice(80, 130);
    await pool(down, CONCURRENCY, (d) => send(d, 'down'));
    for (const d of down) {
      expect(last(d).status, `${d.delivery} while Redis was down: ${last(d).body}`).toBe(503);
      expect(Number(last(d).retryAfter)).toBeGreaterThan(0);
      expect(last(d).ms).toBeLessThan(5_000);
    }

    // Redis comes back from its AOF; the receiver reconnects by itself.
    await h.redis.start();
    const restartedAt = Date.now();
    await waitFor('receiver ready again', 30_000, async () => (await fetch(`${h.stack.receiverUrl}/readyz`)).ok, 100);
    console.log(`receiver ready ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after redis-server restarted`);

    // Phase 3: the rest of the burst.
    await pool(ds.slice(130), CONCURRENCY, (d) => send(d, 'after'));

    // GitHub redelivers what failed (same delivery id and bytes), until accepted — bounded.
    for (let round = 0; round < 20 && ds.some((d) => last(d).status !== 202); round++) {
      await pool(
        ds.filter((d) => last(d).status !== 202),
        8,
        (d) => send(d, 'redelivery'),
      );
      if (ds.some((d) => last(d).status !== 202)) await sleep(250);
    }

    const tally = (phase: string) => {
      const m: Record<string, number> = {};
      for (const d of ds.filter((x) => x.phase === phase)) {
        const k = String(d.answers[0]!.status);
        m[k] = (m[k] ?? 0) + 1;
      }
      return JSON.stringify(m);
    };
    const redelivered = ds.filter((d) => d.answers.length > 1).length;
    console.log(
      `first answers — during crash: ${tally('crash')}, Redis down: ${tally('down')}, after restart: ${tally('after')}; ${redelivered} redelivered`,
    );

    // Nothing but 202, 503 (or a reset connection) is ever answered, and in the end everything was accepted.
    for (const d of ds) {
      for (const a of d.answers) expect([0, 202, 503], `${d.delivery}: ${a.status} ${a.body}`).toContain(a.status);
      expect(last(d).status, `${d.delivery} never accepted`).toBe(202);
    }
    expect(ds.filter((d) => d.phase === 'crash' && d.answers[0]!.status === 202).length).toBeGreaterThan(0);

    // Every accepted delivery is decided.
    const decidedAt = await waitFor(
      'every accepted delivery to be decided',
      150_000,
      async () => {
        const seen = new Set((await h.audit()).map((r) => r.deliveryId));
        return ds.every((d) => seen.has(d.delivery)) ? Date.now() : undefined;
      },
      250,
    );
    console.log(`all ${N} deliveries decided ${((decidedAt - restartedAt) / 1000).toFixed(1)} s after the restart`);

    const audit = await h.audit();
    const perDelivery = new Map<string, number>();
    for (const r of audit) perDelivery.set(r.deliveryId, (perDelivery.get(r.deliveryId) ?? 0) + 1);
    const extra = [...perDelivery.values()].filter((n) => n > 1).length;
    console.log(
      `${audit.length} decisions for ${N} deliveries (${extra} deliveries decided more than once); actions: ${JSON.stringify(Object.fromEntries([...new Set(audit.map((r) => r.action))].map((a) => [a, audit.filter((r) => r.action === a).length])))}`,
    );

    // The Application ends on the newest commit, each commit pinned at most once, never backwards.
    await waitFor('pinned to the newest commit', 10_000, async () => (await h.readApp()).revision === shas[N - 1]);
    expect([...countBy(audit, 'pin').values()].every((n) => n === 1)).toBe(true);
    expect(
      neverBackwards(
        h,
        audit.filter((r) => r.action === 'pin').map((r) => r.sha),
      ),
    ).toBe(true);
    // Only decisions the rules allow for a linear history of verified commits.
    expect(audit.every((r) => ['pin', 'skip-older', 'skip-same'].includes(r.action))).toBe(true);
    // The hash chain of the Application's audit records survived the crash intact.
    const chain = await createAuditTrail(h.client, h.prefix).verifyChain(APP_KEY);
    expect(chain.problems).toEqual([]);
    expect(chain.checked).toBe(audit.length);
    // No job was given up on.
    expect(await h.verifyQueue.getFailedCount()).toBe(0);
    expect(await h.gateQueue.getFailedCount()).toBe(0);
    // Every process survived the Redis outage.
    for (const p of h.stack.processes) expect(p.child.exitCode, `${p.name} exited`).toBeNull();
  }, 280_000);
});
