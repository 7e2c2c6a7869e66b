/**
 * A verifier or a gate dies with SIGKILL (OOM kill, node crash, node drained without grace) while it holds a job:
 * BullMQ's stalled-job detection must hand the job to a surviving replica, and the Application must end on the
 * newest verified commit, pinned once per commit, never backwards, with the audit trail saying why.
 *
 * Each process is caught in the act deterministically, not by racing it:
 * - its git fetches go through a smart-HTTP server that parks them (`hold`), so at the moment of the kill the job is
 *   provably active in that process and mid-fetch (and a gate holds the Application's lock);
 * - for "after the PATCH, before the audit record", Redis writes are paused (`CLIENT PAUSE … WRITE`), so the gate
 *   is stuck between the two when it is killed.
 *
 * Recovery time is bounded by the workers' `lockDuration` (60 s, hard-coded in services/{verifier,gate}/src/main.ts)
 * plus BullMQ's default `stalledInterval` (30 s): 30–90 s after the kill. The scenarios are independent (one
 * pipeline and one redis-server each) and run concurrently, so the file takes one recovery, not three.
 */
import { describe, it } from 'vitest';
import { sendPush, waitForDecision } from '@gitops-gate/local-stack';
import { APP_KEY, countBy, neverBackwards, sampleRevisions, startHarness, tcpLocalPorts, waitFor, type Harness } from './lib/harness.js';

/** How long a test waits for a recovery before it calls the job lost. */
const RECOVERY_MS = 90_000;
/**
 * The bound asserted: the harness runs workers with lockDuration 10 s + stalledInterval 5 s = 15 s worst case, plus
 * slack for a loaded 2-core machine with the three scenarios and other suites running at once.
 */
const RECOVERY_BOUND_MS = 60_000;
const TEST_MS = 200_000;

async function withHarness(setup: (h: Harness) => Promise<void>, body: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness();
  try {
    await setup(h);
    await body(h);
  } finally {
    await h.client.call('CLIENT', 'UNPAUSE').catch(() => undefined);
    await h.close();
  }
}

async function pinBaseline(h: Harness): Promise<string> {
  const [c0] = h.commits(1, { label: 'base' });
  const res = await sendPush(h.stack, c0!);
  if (res.status !== 202) throw new Error(`baseline push answered ${res.status}`);
  await waitFor('baseline pin', 30_000, async () => (await h.readApp()).revision === c0);
  return c0!;
}

describe.concurrent('SIGKILL of a service mid-job', () => {
  it(
    'a verifier killed mid-fetch: another verifier finishes both its jobs; newest pinned exactly once, never backwards',
    async ({ expect }) => {
      await withHarness(
        async (h) => {
          await h.spawn('verifier');
          await h.spawn('gate');
        },
        async (h) => {
          const c0 = await pinBaseline(h);
          const sampler = sampleRevisions(h);
          const patchesBefore = h.patches().length;
          const v1 = h.stack.processes.find((p) => p.name === 'verifier-1')!;
          const [c1, c2] = h.commits(2, { label: 'during-crash' });
          h.git.hold('verifier-1');
          const r1 = await sendPush(h.stack, c1!, c0);
          const r2 = await sendPush(h.stack, c2!, c1);
          expect([r1.status, r2.status]).toEqual([202, 202]);

          // Caught in the act: verifier-1 (concurrency 2) holds both jobs and one of its fetches is parked on the wire.
          const held = await h.git.waitForHeld(20_000);
          expect(held.tag).toBe('verifier-1');
          await waitFor('both jobs active', 20_000, async () => (await h.verifyQueue.getActiveCount()) === 2);
          expect(await h.verifyQueue.getWaitingCount()).toBe(0);

          // An idle peer, then the crash (the fetch's git child dies with it, as in a container).
          const v2 = await h.spawn('verifier');
          const killedAt = Date.now();
          await h.kill9(v1);
          h.git.release({ drop: true });
          expect(v1.child.signalCode).toBe('SIGKILL');

          const d1 = await waitForDecision(h.gateUrl(), c1!, { deliveryId: r1.delivery, timeoutMs: RECOVERY_MS });
          const d2 = await waitForDecision(h.gateUrl(), c2!, { deliveryId: r2.delivery, timeoutMs: RECOVERY_MS });
          const recoveryMs = Date.now() - killedAt;
          console.log(`verifier SIGKILL → both stalled jobs decided by ${v2.name} after ${(recoveryMs / 1000).toFixed(1)} s`);

          await waitFor('pinned to the newest commit', 10_000, async () => (await h.readApp()).revision === c2);
          const seen = await sampler.stop();

          // The jobs went through stalled recovery once and were completed by the surviving verifier.
          for (const r of [r1, r2]) {
            const job = await h.verifyQueue.getJob(
              (await h.client.get(`${h.prefix}:${h.verifyQueue.name}:de:${r.delivery}`)) ?? `gh-${r.delivery}`,
            );
            expect(await job?.getState()).toBe('completed');
            expect(job?.stalledCounter).toBe(1);
          }
          const verdictsBy = (sha: string) =>
            h.logs.filter((l) => l.includes('"commit verdict"') && l.includes(sha)).map((l) => l.split(' ')[0]);
          expect(verdictsBy(c1!)).toEqual([v2.name]);
          expect(verdictsBy(c2!)).toEqual([v2.name]);

          // One decision per delivery; c2 pinned exactly once; c1 at most once (skip-older if c2 was decided first).
          const audit = await h.audit();
          expect(audit.filter((r) => r.deliveryId === r1.delivery)).toHaveLength(1);
          expect(audit.filter((r) => r.deliveryId === r2.delivery)).toHaveLength(1);
          expect(d2.action).toBe('pin');
          expect(['pin', 'skip-older']).toContain(d1.action);
          const pins = countBy(audit, 'pin');
          expect(pins.get(c2!)).toBe(1);
          expect(pins.get(c1!) ?? 0).toBe(d1.action === 'pin' ? 1 : 0);

          // One successful write per pin, and the Application never moved backwards.
          expect(
            h
              .patches()
              .slice(patchesBefore)
              .filter((p) => p.status === 200),
          ).toHaveLength((pins.get(c1!) ?? 0) + 1);
          expect(
            neverBackwards(
              h,
              audit.filter((r) => r.action === 'pin').map((r) => r.sha),
            ),
          ).toBe(true);
          expect(seen[0]).toBe(c0);
          expect(seen[seen.length - 1]).toBe(c2);
          expect(neverBackwards(h, seen)).toBe(true);
          expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
        },
      );
    },
    TEST_MS,
  );

  it(
    'a gate killed while deciding (holding the Application lock): the other gate pins the newest commit, never backwards',
    async ({ expect }) => {
      await withHarness(
        async (h) => {
          await h.spawn('verifier');
          await h.spawn('gate');
          await h.spawn('gate');
        },
        async (h) => {
          const c0 = await pinBaseline(h);
          const sampler = sampleRevisions(h);
          const patchesBefore = h.patches().length;
          h.git.hold('gate-1', 'gate-2');
          const [c1, c2] = h.commits(2, { label: 'during-gate-crash' });
          const r1 = await sendPush(h.stack, c1!, c0);
          // One gate takes c1's verdict, locks the Application and fetches for the ancestry check: parked.
          const held = await h.git.waitForHeld(30_000);
          const victim = h.stack.processes.find((p) => p.name === held.tag)!;
          const survivor = h.stack.processes.find((p) => p.service === 'gate' && p !== victim)!;
          const r2 = await sendPush(h.stack, c2!, c1);
          // The other gate takes c2's verdict and waits for the Application lock the victim holds.
          await waitFor('both verdicts active in the gates', 30_000, async () => (await h.gateQueue.getActiveCount()) === 2);
          expect(await h.client.exists(`${h.prefix}:lock:${APP_KEY}`)).toBe(1);

          const killedAt = Date.now();
          await h.kill9(victim);
          h.git.release({ drop: true });

          const survivorUrl = `http://127.0.0.1:${survivor.port}`;
          const d2 = await waitForDecision(survivorUrl, c2!, { deliveryId: r2.delivery, timeoutMs: RECOVERY_MS });
          const d1 = await waitForDecision(survivorUrl, c1!, { deliveryId: r1.delivery, timeoutMs: RECOVERY_MS });
          const recoveryMs = Date.now() - killedAt;
          console.log(
            `gate SIGKILL mid-decision → both verdicts decided by ${survivor.name} after ${(recoveryMs / 1000).toFixed(1)} s (${d1.action} ${d2.action})`,
          );
          const seen = await sampler.stop();

          expect(d2.action).toBe('pin');
          expect(['pin', 'skip-older']).toContain(d1.action);
          expect((await h.readApp()).revision).toBe(c2);
          const audit = await h.audit();
          expect(audit.filter((r) => r.deliveryId === r1.delivery)).toHaveLength(1);
          expect(audit.filter((r) => r.deliveryId === r2.delivery)).toHaveLength(1);
          const pins = countBy(audit, 'pin');
          expect(pins.get(c2!)).toBe(1);
          expect(pins.get(c1!) ?? 0).toBe(d1.action === 'pin' ? 1 : 0);
          expect(
            h
              .patches()
              .slice(patchesBefore)
              .filter((p) => p.status === 200),
          ).toHaveLength((pins.get(c1!) ?? 0) + 1);
          expect(
            neverBackwards(
              h,
              audit.filter((r) => r.action === 'pin').map((r) => r.sha),
            ),
          ).toBe(true);
          expect(seen[seen.length - 1]).toBe(c2);
          expect(neverBackwards(h, seen)).toBe(true);
          // The victim's verdict job was recovered by stalled-job detection, not lost or failed.
          const completed = await h.gateQueue.getJobs(['completed'], 0, 100);
          expect(completed.find((j) => (j.data as { deliveryId?: string }).deliveryId === r1.delivery)?.stalledCounter).toBe(1);
          expect(await h.gateQueue.getFailedCount()).toBe(0);
          expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
        },
      );
    },
    TEST_MS,
  );

  it(
    'a gate killed after the API server applied its PATCH, before the audit record: the pin is still in the audit trail',
    async ({ expect }) => {
      await withHarness(
        async (h) => {
          await h.spawn('verifier');
          await h.spawn('gate');
          await h.spawn('gate');
        },
        async (h) => {
          const c0 = await pinBaseline(h);
          const patchesBefore = h.patches().length;
          h.git.hold('gate-1', 'gate-2');
          const [c1] = h.commits(1, { label: 'pinned-then-crash' });
          const r1 = await sendPush(h.stack, c1!, c0);
          const held = await h.git.waitForHeld(30_000);
          const victim = h.stack.processes.find((p) => p.name === held.tag)!;
          const survivor = h.stack.processes.find((p) => p.service === 'gate' && p !== victim)!;
          const victimPorts = tcpLocalPorts(victim.child.pid!);

          // Freeze Redis writes, let the gate decide and PATCH; it then blocks on the audit write.
          await h.client.call('CLIENT', 'PAUSE', '60000', 'WRITE');
          try {
            h.git.release();
            await waitFor('the PATCH to reach the API server', 30_000, () => h.patches().length > patchesBefore);
            expect(h.patches().slice(patchesBefore)).toEqual([{ status: 200 }]);
            expect((await h.readApp()).revision).toBe(c1);
            await h.kill9(victim);
            // Redis must drop the victim's connections (and the audit write queued on them) before writes resume.
            await waitFor("Redis to drop the dead gate's connections", 10_000, async () => {
              const list = String(await h.client.call('CLIENT', 'LIST'));
              return !list.split('\n').some((l) => victimPorts.has(Number(/ addr=[^ ]*:(\d+) /.exec(l)?.[1])));
            });
          } finally {
            await h.client.call('CLIENT', 'UNPAUSE');
          }
          const killedAt = Date.now();

          const d1 = await waitForDecision(`http://127.0.0.1:${survivor.port}`, c1!, { deliveryId: r1.delivery, timeoutMs: RECOVERY_MS });
          console.log(
            `gate SIGKILL between PATCH and audit record → verdict redone by ${survivor.name} as "${d1.action}" after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
          );
          const app = await h.readApp();
          expect(app.revision).toBe(c1);
          // No second write for the same commit.
          expect(
            h
              .patches()
              .slice(patchesBefore)
              .filter((p) => p.status === 200),
          ).toHaveLength(1);
          // The audit trail must still say why the Application is on c1: one pin record, the one the annotation names.
          const audit = await h.audit();
          const pinsOfC1 = audit.filter((r) => r.action === 'pin' && r.sha === c1);
          expect(
            pinsOfC1,
            `audit records for ${c1}: ${JSON.stringify(audit.filter((r) => r.sha === c1).map((r) => r.action))}`,
          ).toHaveLength(1);
          expect(app.annotations['gitops-gate.io/decision-id']).toBe(pinsOfC1[0]!.id);
        },
      );
    },
    TEST_MS,
  );
});
