/**
 * Graceful shutdown: a verifier that gets SIGTERM while it holds a job finishes that job before it exits (what a
 * rolling update or a scale-down does to a pod), so nothing waits for stalled-job recovery.
 */
import { describe, expect, it } from 'vitest';
import { sendPush, waitForDecision } from '@gitops-gate/local-stack';
import { startHarness, waitFor } from './lib/harness.js';

describe('SIGTERM', () => {
  it('a verifier stopped mid-job finishes the job, then exits 0; the job is not stalled', async () => {
    const h = await startHarness();
    try {
      await h.spawn('verifier');
      await h.spawn('gate');
      const [c1] = h.commits(1, { label: 'graceful' });
      h.git.hold('verifier-1');
      const r1 = await sendPush(h.stack, c1!);
      expect(r1.status).toBe(202);
      const held = await h.git.waitForHeld(20_000);
      expect(held.tag).toBe('verifier-1');
      const victim = h.stack.processes.find((p) => p.name === 'verifier-1')!;
      const exited = new Promise<number | null>((r) => victim.child.once('exit', (code) => r(code)));
      victim.child.kill('SIGTERM');
      // Still working on the job: it has not exited while its fetch is parked.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(victim.child.exitCode).toBeNull();
      h.git.release();
      expect(await exited).toBe(0);
      const d = await waitForDecision(h.gateUrl(), c1!, { deliveryId: r1.delivery, timeoutMs: 30_000 });
      expect(d.action).toBe('pin');
      const job = await h.verifyQueue.getJob(
        (await h.client.get(`${h.prefix}:${h.verifyQueue.name}:de:${r1.delivery}`)) ?? `gh-${r1.delivery}`,
      );
      expect(await job?.getState()).toBe('completed');
      expect(job?.stalledCounter ?? 0).toBe(0);
      await waitFor('pinned', 10_000, async () => (await h.readApp()).revision === c1);
    } finally {
      await h.close();
    }
  }, 120_000);
});
