// Row 5: cached verdicts — a repeat (redelivery, reconcile, another branch or Application) is a Redis lookup, not a
// verification. Verdict-cache hits per second in one process with 64 lookups in flight (as a verifier with several
// jobs, or several verifiers, would issue them), against fresh verification of the same commit in the same run.
// Real redis-server with AOF; the cache is the verifier's own (`createVerdictCache`), keyed by the commit bytes,
// the policy's rules and the trust root.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCommit } from '@gitops-gate/commit-verify';
import { compilePolicy } from '@gitops-gate/policy';
import { createRedisConnection } from '@gitops-gate/queue';
import { startTestRedis } from '@gitops-gate/testing';
import { createVerdictCache } from '@gitops-gate/verifier';
import { FIXTURES, log } from './lib/util.js';

const SHA = '1473882a7cce225d15f1a2226399a0802251b756';

export async function benchCache({ seconds = 3, inflight = 64 } = {}) {
  const redis = await startTestRedis({ appendfsync: 'everysec' });
  const conn = createRedisConnection(redis.url, 'worker');
  try {
    const raw = readFileSync(join(FIXTURES, 'git-commits/ssh', `${SHA}.commit`));
    const policy = await compilePolicy({
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'bench' },
      spec: {
        repository: '*',
        branches: ['*'],
        commits: { ssh: { allowedSigners: readFileSync(join(FIXTURES, 'git-commits/ssh/allowed_signers'), 'utf8') } },
      },
    });
    const cache = createVerdictCache(conn, 'bench', { trustRevision: 'bench' });
    const first = await cache.verify(raw, policy.commit, { expectedSha: SHA });
    if (!first.ok) throw new Error(`fixture did not verify: ${first.code}`);

    const measure = async (fn) => {
      let n = 0;
      const end = performance.now() + seconds * 1000;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: inflight }, async () => {
          while (performance.now() < end) {
            const v = await fn();
            if (!v.ok) throw new Error('verdict changed');
            n += 1;
          }
        }),
      );
      return n / ((performance.now() - t0) / 1000);
    };
    // Interleaved rounds: fresh, cached, fresh, cached.
    const fresh = [];
    const cached = [];
    for (let i = 0; i < 2; i++) {
      fresh.push(await measure(() => verifyCommit(raw, policy.commit, { expectedSha: SHA })));
      cached.push(await measure(() => cache.verify(raw, policy.commit, { expectedSha: SHA })));
    }
    const best = (a) => Math.max(...a);
    const out = { cached: best(cached), fresh: best(fresh), ratio: best(cached) / best(fresh), inflight, hits: cache.stats().hits };
    log(`cache: ${Math.round(out.cached)} cached verdicts/s vs ${Math.round(out.fresh)} fresh SSH verifications/s`);
    return out;
  } finally {
    conn.disconnect();
    await redis.close();
  }
}
