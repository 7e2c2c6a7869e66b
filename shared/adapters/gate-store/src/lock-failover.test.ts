/**
 * The per-Application lock across a Redis failover. The lock is a key in Redis, replicated asynchronously: if the
 * master dies after gate A took the lock and before the key reached the replica, the promoted replica has no lock and
 * gate B takes it too. Two gates then hold "the" lock. What keeps them from both writing is the resourceVersion-
 * guarded JSON patch: the test makes both gates read the same Application version and patch at the same moment,
 * and exactly one patch lands; the other is refused by the API server, re-read and re-decided.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitVerdictJob } from '@gitops-gate/contracts';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { startRedisNode, type RedisNode } from '@gitops-gate/testing';
import { createGate, type ApplicationStore } from '@gitops-gate/gate-core';
import { createAuditTrail } from './audit-trail.js';
import { createKubeApplicationStore } from './kube.js';
import { createRedisLock } from './redis-lock.js';

const REPO = 'https://github.com/org/app.git';
const silent = createLogger('gate-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

function verdict(sha: string): CommitVerdictJob {
  return {
    v: 1,
    kind: 'commit-verdict',
    deliveryId: randomUUID(),
    repoUrl: 'https://github.com/org/app',
    cloneUrl: REPO,
    repoFullName: 'org/app',
    branch: 'main',
    sha,
    outcome: 'verified',
    method: 'ssh',
    signer: { identity: 'dev@example.com' },
    code: 'VERIFIED',
    reasons: [],
    rule: 'test',
    verifiedAt: new Date().toISOString(),
    onBranch: true,
    branchHead: sha,
    policies: [{ name: 'test', scope: 'Namespaced', namespace: 'argocd', mode: 'Enforce', selector: {}, ok: true, code: 'VERIFIED' }],
  };
}

let master: RedisNode;
let replica: RedisNode;
let sandbox: SandboxApiServer;
let store: ApplicationStore;

beforeAll(async () => {
  master = await startRedisNode();
  replica = await startRedisNode({ args: () => ['--replicaof', '127.0.0.1', String(master.port)] });
  sandbox = await createSandboxApiServer({ seed: [demoApplication({ name: 'app', namespace: 'argocd', repoURL: REPO, branch: 'main' })] });
  const kc = new KubeConfig();
  kc.loadFromString(sandbox.kubeconfigYaml());
  store = createKubeApplicationStore(kc);
}, 30_000);

afterAll(async () => {
  await sandbox?.close();
  await replica?.stop(true);
  await master?.stop(true);
});

describe('two gates holding "the" lock after a failover', () => {
  it('the resourceVersion-guarded patch keeps exactly one write; the other gate re-reads and re-decides', async () => {
    const prefix = `lf-${randomUUID().slice(0, 6)}`;
    const onMaster = createRedisConnection(`redis://127.0.0.1:${master.port}`, 'worker');
    const onReplica = createRedisConnection(`redis://127.0.0.1:${replica.port}`, 'worker');
    // The replica is cut off (the lock key will not reach it), then promoted: what a failover after a lost write is.
    await onReplica.replicaof('NO', 'ONE');

    // Both gates reach their patch before either sends it: they read the same resourceVersion under "their" lock.
    const patches: { gate: string; ok: boolean; status?: number }[] = [];
    let arrived = 0;
    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    const racing = (gate: string): ApplicationStore => ({
      ...store,
      async patch(ns, name, body) {
        if (patches.filter((p) => p.gate === gate).length === 0) {
          if (++arrived === 2) release();
          await barrier;
        }
        try {
          const out = await store.patch(ns, name, body);
          patches.push({ gate, ok: true });
          return out;
        } catch (err) {
          patches.push({ gate, ok: false, status: (err as { status?: number }).status });
          throw err;
        }
      },
    });
    const order = [A, B];
    const isAncestor = async (_url: string, a: string, d: string) => order.indexOf(a) <= order.indexOf(d) && order.indexOf(a) >= 0;
    const gateOn = (name: string, redis: typeof onMaster) =>
      createGate({
        store: racing(name),
        lock: createRedisLock(redis, prefix, { waitMs: 2_000 }),
        audit: createAuditTrail(redis, prefix),
        logger: silent,
        namespaces: [],
        isAncestor,
      });

    const held: string[] = [];
    const lockA = createRedisLock(onMaster, prefix);
    const lockB = createRedisLock(onReplica, prefix);
    // Sanity: both locks can be held at once — the failover broke mutual exclusion.
    await lockA.withLock('argocd/app', () => lockB.withLock('argocd/app', async () => void held.push('both')));
    expect(held).toEqual(['both']);

    const [outA, outB] = await Promise.all([
      gateOn('A', onMaster).applyVerdict(verdict(A)),
      gateOn('B', onReplica).applyVerdict(verdict(B)),
    ]);
    const firstRound = patches.slice(0, 2);
    // Exactly one of the two racing patches landed; the other was refused (409/422), not written over it.
    expect(firstRound.filter((p) => p.ok)).toHaveLength(1);
    expect(firstRound.find((p) => !p.ok)?.status).toBeOneOf([409, 422]);
    // The loser re-read and decided again on the new state: the Application never goes backwards, ends on B.
    const app = await store.get('argocd', 'app');
    expect(app.spec?.source?.targetRevision).toBe(B);
    const actions = [outA[0]?.action, outB[0]?.action];
    expect(actions).toContain('pin');
    const winner = firstRound.find((p) => p.ok)!.gate;
    console.log(
      `two lock holders: ${winner} wrote first, the other got ${firstRound.find((p) => !p.ok)?.status}; decisions A=${actions[0]} B=${actions[1]}; ${patches.filter((p) => p.ok).length} patch(es) landed`,
    );
    onMaster.disconnect();
    onReplica.disconnect();
  });
});
