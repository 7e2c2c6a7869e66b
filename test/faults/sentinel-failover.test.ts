/**
 * Redis as production runs it: a master, a replica and three redis-sentinel processes; the receiver, two verifiers
 * and the gate configured with REDIS_SENTINELS. During a steady, bounded stream of signed deliveries (~50/s) the
 * master is killed with SIGKILL. Sentinel promotes the replica and the services follow it without a restart.
 *
 * "Acknowledged means replicated": the receiver answers 202 only after `WAIT 1` confirmed the delivery on a replica,
 * so the failover cannot take a 202 back. While there is no replica to confirm (the old master is dead, the new one
 * has no replica until the old one restarts and is re-attached by Sentinel), deliveries get 503 + Retry-After and
 * succeed when GitHub redelivers them. Then the replica dies: WAIT times out → 503, nothing is lost.
 *
 * The figures (deliveries sent, 202s, 503s, decisions, pins, time to recover) are printed for the closing note.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditTrail } from '@gitops-gate/gate-store';
import { startSentinelTopology, type SentinelTopology } from '@gitops-gate/testing';
import {
  APP_KEY,
  countBy,
  deliverPush,
  neverBackwards,
  pool,
  sampleRevisions,
  startPipelineHarness,
  waitFor,
  type Answer,
  type Harness,
} from './lib/harness.js';

const RATE_PER_S = 50;
// ~2.4 s of deliveries at 50/s, the master killed after 0.8 s: bounded so the suite stays short on a busy machine.
const N = 120;
const KILL_AFTER = 40;

let topology: SentinelTopology;
let h: Harness;

beforeAll(async () => {
  topology = await startSentinelTopology({ replicas: 1, downAfterMs: 1_000 });
  // WAIT timeout 500 ms: a delivery without a replica is answered 503 well inside GitHub's 10 s.
  h = await startPipelineHarness({
    sentinel: topology,
    env: { REDIS_WAIT_TIMEOUT_MS: '500', VERDICT_HISTORY_DEPTH: '256' },
    logLevel: 'warn',
  });
}, 180_000);

afterAll(async () => {
  await h?.close();
});

interface Delivery {
  sha: string;
  before?: string;
  delivery: string;
  answers: (Answer & { at: number })[];
  sentAt: number;
}

const last = (d: Delivery) => d.answers[d.answers.length - 1]!;

async function send(d: Delivery): Promise<void> {
  const a = await deliverPush(h, d);
  d.answers.push({ ...a, at: Date.now() });
}

/** GitHub redelivers what failed (same id and bytes), bounded. */
async function redeliver(ds: Delivery[]): Promise<void> {
  for (let round = 0; round < 60 && ds.some((d) => last(d).status !== 202); round++) {
    await pool(
      ds.filter((d) => last(d).status !== 202),
      8,
      send,
    );
    if (ds.some((d) => last(d).status !== 202)) await sleep(500);
  }
}

describe('Sentinel failover under a steady stream of deliveries', () => {
  it(`kill -9 of the master during ${N} deliveries at ${RATE_PER_S}/s: every 202 is decided, 503s succeed when resent`, async () => {
    const shas = h.commits(N, { label: 'stream' });
    const ds: Delivery[] = shas.map((sha, i) => ({ sha, before: shas[i - 1], delivery: randomUUID(), answers: [], sentAt: 0 }));
    const revisions = sampleRevisions(h, 50);
    const oldMasterPort = topology.master.port;
    let killedAt = 0;
    let promotedAt = 0;
    const t0 = Date.now();
    // A steady stream: one delivery every 20 ms, whatever the answers take (GitHub does not wait either).
    const inflight = ds.map(async (d, i) => {
      await sleep(Math.max(0, t0 + (i * 1000) / RATE_PER_S - Date.now()));
      if (i === KILL_AFTER) {
        killedAt = Date.now();
        void topology.master.stop(true).then(async () => {
          promotedAt = await waitFor(
            'a replica promoted',
            30_000,
            async () => ((await topology.currentMasterPort()) !== oldMasterPort ? Date.now() : undefined),
            50,
          );
          // The killed master comes back (as a Kubernetes pod would); Sentinel turns it into the new master's replica.
          await topology.master.start();
        });
      }
      d.sentAt = Date.now();
      await send(d);
    });
    await Promise.all(inflight);
    const firstAnswers = ds.map((d) => ({ ...d.answers[0]!, sentAt: d.sentAt }));
    await waitFor('the old master re-attached as a replica', 60_000, () => topology.master.running && promotedAt > 0, 100);
    await redeliver(ds);

    const before = firstAnswers.filter((a) => a.sentAt < killedAt);
    const after = firstAnswers.filter((a) => a.sentAt >= killedAt);
    const tally = (as: { status: number }[]) => {
      const m: Record<string, number> = {};
      for (const a of as) m[String(a.status)] = (m[String(a.status)] ?? 0) + 1;
      return JSON.stringify(m);
    };
    const firstOkAfterKill = ds
      .filter((d) => d.sentAt >= killedAt)
      .flatMap((d) => d.answers.filter((a) => a.status === 202).map((a) => a.at))
      .sort((a, b) => a - b)[0];
    const recoverS = firstOkAfterKill ? (firstOkAfterKill - killedAt) / 1000 : NaN;
    // 503s answered before the kill have a cause other than the failover: print the receiver's logged reasons.
    const answeredBeforeKill = firstAnswers.filter((a) => a.at < killedAt);
    const reasons = new Map<string, number>();
    for (const line of h.logs.filter((l) => l.startsWith('receiver') && l.includes('queue unavailable'))) {
      const json = JSON.parse(line.slice(line.indexOf('{'))) as { time: number; err?: { message?: string } | string };
      if (json.time >= killedAt) continue;
      const msg = typeof json.err === 'string' ? json.err : (json.err?.message ?? '?');
      reasons.set(msg, (reasons.get(msg) ?? 0) + 1);
    }

    console.log(
      [
        `sentinel failover (answers): ${N} deliveries sent at ${RATE_PER_S}/s, master killed after ${KILL_AFTER}`,
        `  first answers of deliveries sent before the kill: ${tally(before)} (answered before the kill: ${tally(answeredBeforeKill)}); sent from the kill on: ${tally(after)}`,
        `  receiver 503 reasons before the kill: ${JSON.stringify(Object.fromEntries(reasons))}`,
        `  replica promoted ${((promotedAt - killedAt) / 1000).toFixed(1)} s after the kill; first 202 after the kill at +${recoverS.toFixed(1)} s`,
      ].join('\n'),
    );
    // Every delivery ends accepted; only 202, 503 (or a reset connection: 0) were ever answered, 503 with Retry-After.
    for (const d of ds) {
      for (const a of d.answers) {
        expect([0, 202, 503], `${d.delivery}: ${a.status} ${a.body}`).toContain(a.status);
        if (a.status === 503) expect(Number(a.retryAfter)).toBeGreaterThan(0);
      }
      expect(last(d).status, `${d.delivery} never accepted`).toBe(202);
    }

    // Every accepted delivery is decided.
    const decidedAt = await waitFor(
      'every accepted delivery to be decided',
      700_000,
      async () => {
        const seen = new Set((await h.audit()).map((r) => r.deliveryId));
        return ds.every((d) => seen.has(d.delivery)) ? Date.now() : undefined;
      },
      250,
    );
    const audit = await h.audit();
    const pins = audit.filter((r) => r.action === 'pin');
    await waitFor('pinned to the newest commit', 30_000, async () => (await h.readApp()).revision === shas[N - 1]);
    const seenRevisions = await revisions.stop();

    console.log(
      [
        `sentinel failover: ${N} deliveries sent at ${RATE_PER_S}/s, master killed after ${KILL_AFTER}`,
        `  first answers of deliveries sent before the kill: ${tally(before)} (answered before the kill: ${tally(answeredBeforeKill)}); sent from the kill on: ${tally(after)}`,
        `  receiver 503 reasons before the kill: ${JSON.stringify(Object.fromEntries(reasons))}`,
        `  all answers: 202 ×${ds.flatMap((d) => d.answers).filter((a) => a.status === 202).length}, 503 ×${ds.flatMap((d) => d.answers).filter((a) => a.status === 503).length}, reset ×${ds.flatMap((d) => d.answers).filter((a) => a.status === 0).length}; ${ds.filter((d) => d.answers.length > 1).length} deliveries redelivered`,
        `  replica promoted ${((promotedAt - killedAt) / 1000).toFixed(1)} s after the kill; first 202 after the kill at +${recoverS.toFixed(1)} s`,
        `  decisions recorded: ${audit.length} (${new Set(audit.map((r) => r.deliveryId)).size} distinct deliveries), pins: ${pins.length}, all decided ${((decidedAt - killedAt) / 1000).toFixed(1)} s after the kill`,
      ].join('\n'),
    );

    // No commit pinned twice, never backwards; the hash chain verifies; no job given up on; no service restarted.
    expect([...countBy(audit, 'pin').values()].every((n) => n === 1)).toBe(true);
    expect(
      neverBackwards(
        h,
        pins.map((r) => r.sha),
      ),
    ).toBe(true);
    expect(
      neverBackwards(
        h,
        seenRevisions.filter((r) => h.order(r) >= 0),
      ),
    ).toBe(true);
    const chain = await createAuditTrail(h.client, h.prefix).verifyChain(APP_KEY);
    expect(chain.problems).toEqual([]);
    expect(chain.checked).toBe(audit.length);
    expect(await h.verifyQueue.getFailedCount()).toBe(0);
    expect(await h.gateQueue.getFailedCount()).toBe(0);
    for (const p of h.stack.processes) expect(p.child.exitCode, `${p.name} exited`).toBeNull();
  }, 900_000);

  it('the replica dies: WAIT times out → 503 + Retry-After, nothing lost; accepted once a replica is back', async () => {
    const masterPort = await topology.currentMasterPort();
    const replica = [topology.master, ...topology.replicas].find((n) => n.port !== masterPort)!;
    await replica.stop(true);
    const shas = h.commits(20, { label: 'no-replica' });
    const ds: Delivery[] = shas.map((sha, i) => ({ sha, before: shas[i - 1], delivery: randomUUID(), answers: [], sentAt: Date.now() }));
    await pool(ds, 4, send);
    for (const d of ds) {
      expect(last(d).status, `${d.delivery}: ${last(d).body}`).toBe(503);
      expect(last(d).body).toContain('QUEUE_UNAVAILABLE');
      expect(Number(last(d).retryAfter)).toBeGreaterThan(0);
    }
    await replica.start();
    await redeliver(ds);
    for (const d of ds) expect(last(d).status).toBe(202);
    await waitFor(
      'every redelivered delivery decided',
      400_000,
      async () => {
        const seen = new Set((await h.audit()).map((r) => r.deliveryId));
        return ds.every((d) => seen.has(d.delivery));
      },
      250,
    );
    await waitFor('pinned to the newest commit', 30_000, async () => (await h.readApp()).revision === shas[shas.length - 1]);
    console.log(
      `replica down: ${ds.length} deliveries answered 503 (WAIT timed out), all accepted and decided after the replica came back`,
    );
    for (const p of h.stack.processes) expect(p.child.exitCode, `${p.name} exited`).toBeNull();
  }, 500_000);
});
