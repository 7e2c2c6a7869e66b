import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCommit } from '@gitops-gate/commit-verify';
import { compilePolicy, type CompiledPolicy } from '@gitops-gate/policy';
import { createRedisConnection } from '@gitops-gate/queue';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createVerdictCache } from './verdict-cache.js';

const FIX = new URL('../../../../shared/fixtures/git-commits/', import.meta.url).pathname;
const SSH_SHA = '1473882a7cce225d15f1a2226399a0802251b756';
const sshRaw = readFileSync(join(FIX, `ssh/${SSH_SHA}.commit`));

const doc = (name: string, commits: Record<string, unknown>) => ({
  apiVersion: 'gitops-gate.io/v1alpha1',
  kind: 'GatePolicy',
  metadata: { name },
  spec: { repository: '*', branches: ['*'], commits },
});

let redis: TestRedis;
let conn: Redis;
let ssh: CompiledPolicy;
beforeAll(async () => {
  redis = await startTestRedis();
  conn = createRedisConnection(redis.url, 'worker');
  ssh = await compilePolicy(doc('ssh', { ssh: { allowedSigners: readFileSync(join(FIX, 'ssh/allowed_signers'), 'utf8') } }));
});
afterAll(async () => {
  conn.disconnect();
  await redis.close();
});

describe('verdict cache (Redis, shared by replicas)', () => {
  it('a repeat of the same bytes and policy is a lookup with the same verdict', async () => {
    const cache = createVerdictCache(conn, `c-${randomUUID()}`, { trustRevision: 't' });
    const first = await cache.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA });
    const second = await cache.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA });
    expect(second).toEqual(first);
    expect(first.ok).toBe(true);
    expect(cache.stats()).toEqual({ hits: 1, misses: 1 });
    // Another replica (another cache object, same Redis and prefix) hits too.
    const prefix = `c-${randomUUID()}`;
    await createVerdictCache(conn, prefix, { trustRevision: 't' }).verify(sshRaw, ssh.commit);
    const other = createVerdictCache(conn, prefix, { trustRevision: 't' });
    await other.verify(sshRaw, ssh.commit);
    expect(other.stats().hits).toBe(1);
  });

  it('a rejection an older verifier cached for a key type it could not check (SSH_CERT_UNSUPPORTED) is not reused', async () => {
    const prefix = `c-${randomUUID()}`;
    const cache = createVerdictCache(conn, prefix, { trustRevision: 't' });
    expect((await cache.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA })).ok).toBe(true);
    const [key] = await conn.keys(`${prefix}:verdict:*`);
    await conn.set(
      key!,
      JSON.stringify({ ok: false, method: 'ssh', code: 'SSH_CERT_UNSUPPORTED', reason: 'old verifier', policy: 'ssh', sha: SSH_SHA }),
    );
    expect((await cache.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA })).ok).toBe(true);
    expect(cache.stats()).toEqual({ hits: 0, misses: 2 });
  });

  it('different bytes, policy rules, trust root or expected sha miss', async () => {
    const prefix = `c-${randomUUID()}`;
    const cache = createVerdictCache(conn, prefix, { trustRevision: 't' });
    await cache.verify(sshRaw, ssh.commit);
    const mutated = Buffer.from(sshRaw);
    mutated[mutated.length - 2] ^= 1;
    expect((await cache.verify(mutated, ssh.commit)).ok).toBe(false);
    const other = await compilePolicy(
      doc('ssh', {
        ssh: { allowedSigners: 'nobody@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB6o1eNs6ysA1bq8fU5J8mKqj7Xx1c2Y6k3mXh3R1Xx' },
      }),
    );
    expect((await cache.verify(sshRaw, other.commit)).ok).toBe(false);
    await createVerdictCache(conn, prefix, { trustRevision: 'other-root' }).verify(sshRaw, ssh.commit);
    await cache.verify(sshRaw, ssh.commit, { expectedSha: 'f'.repeat(40) });
    expect(cache.stats().hits).toBe(0);
  });

  it('a rejection that depends on the clock or on Rekor being up is never cached; the next lookup verifies again', async () => {
    for (const code of [
      'GPG_SIGNATURE_FROM_FUTURE',
      'GPG_SIGNATURE_EXPIRED',
      'REKOR_UNAVAILABLE',
      'GITSIGN_REKOR_LOOKUP_FAILED',
      'GITSIGN_TLOG_ENTRY_NOT_FOUND',
    ]) {
      // The first verification happens before the signature's time has come (or while Rekor is down); the second after.
      const answers = [
        { ok: false as const, method: 'gpg' as const, code, reason: 'not now', policy: 'ssh', sha: SSH_SHA },
        { ok: true as const, method: 'gpg' as const, signer: { identity: 'dev@example.com' }, evidence: [], policy: 'ssh', sha: SSH_SHA },
      ];
      const cache = createVerdictCache(conn, `c-${randomUUID()}`, { trustRevision: 't', verify: async () => answers.shift()! });
      expect(await cache.verify(sshRaw, ssh.commit)).toMatchObject({ ok: false, code });
      // Before: GPG_SIGNATURE_FROM_FUTURE was cached for 7 days, so the commit stayed refused after its time had come.
      expect(await cache.verify(sshRaw, ssh.commit)).toMatchObject({ ok: true });
      expect(cache.stats()).toEqual({ hits: 0, misses: 2 });
    }
  });

  it('a rejection about the bytes (unsigned, unknown key) is cached', async () => {
    let calls = 0;
    const cache = createVerdictCache(conn, `c-${randomUUID()}`, {
      trustRevision: 't',
      verify: async () => ({
        ok: false,
        method: 'gpg',
        code: (calls++, 'GPG_UNKNOWN_KEY'),
        reason: 'not in the keyring',
        policy: 'ssh',
        sha: SSH_SHA,
      }),
    });
    await cache.verify(sshRaw, ssh.commit);
    await cache.verify(sshRaw, ssh.commit);
    expect(calls).toBe(1);
  });

  it('a rejection caused by an unreachable transparency log is never cached', async () => {
    const online = readdirSync(join(FIX, 'gitsign-online')).map((f) => readFileSync(join(FIX, 'gitsign-online', f)));
    const policy = await compilePolicy(doc('g', { gitsign: [{ identityRegExp: '.+', issuer: 'https://accounts.google.com' }] }));
    const trust = createBundleTrust();
    let found: Buffer | undefined;
    for (const r of online) {
      const v = await verifyCommit(r, policy.commit, { env: { trust } });
      if (!v.ok && v.code === 'GITSIGN_NEEDS_ONLINE_LOOKUP') found = r;
    }
    expect(found).toBeDefined();
    const cache = createVerdictCache(conn, `c-${randomUUID()}`, { trustRevision: 't' });
    await cache.verify(found!, policy.commit, { env: { trust } });
    await cache.verify(found!, policy.commit, { env: { trust } });
    expect(cache.stats()).toEqual({ hits: 0, misses: 2 });
  });
});

describe('coalescing across replicas (in-flight marker in Redis)', () => {
  const ok = {
    ok: true as const,
    method: 'ssh' as const,
    signer: { identity: 'dev@example.com' },
    evidence: [],
    policy: 'ssh',
    sha: SSH_SHA,
  };
  /** A verification that takes a while, counted: what two replicas would each repeat without the marker. */
  const slow =
    (counter: { n: number }, ms = 150, verdict: Awaited<ReturnType<typeof verifyCommit>> = ok) =>
    async () => {
      counter.n += 1;
      await new Promise((r) => setTimeout(r, ms));
      return verdict;
    };

  it('50 simultaneous verifications of one (commit, policy, trust) on 2 replicas: 1 verification, 49 answered from it', async () => {
    const prefix = `c-${randomUUID()}`;
    const conn2 = createRedisConnection(redis.url, 'worker');
    try {
      const counter = { n: 0 };
      const a = createVerdictCache(conn, prefix, { trustRevision: 't', verify: slow(counter) });
      const b = createVerdictCache(conn2, prefix, { trustRevision: 't', verify: slow(counter) });
      const all = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA })),
      );
      expect(all.every((v) => v.ok)).toBe(true);
      expect(counter.n).toBe(1);
      expect(a.coalescing().coalesced + b.coalescing().coalesced).toBe(49);
      expect(await conn.keys(`${prefix}:verdict-inflight:*`)).toEqual([]);
    } finally {
      conn2.disconnect();
    }
  });

  it("a dead owner's marker expires and another replica takes over", async () => {
    const prefix = `c-${randomUUID()}`;
    const counter = { n: 0 };
    const dead = createVerdictCache(conn, prefix, {
      trustRevision: 't',
      inflightMs: 300,
      verify: async () => new Promise<never>(() => undefined),
    });
    // The owner starts and never finishes (a crashed process holds its marker until it expires).
    void dead.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA });
    await new Promise((r) => setTimeout(r, 30));
    expect(await conn.keys(`${prefix}:verdict-inflight:*`)).toHaveLength(1);
    const live = createVerdictCache(conn, prefix, { trustRevision: 't', inflightMs: 300, verify: slow(counter, 10) });
    const started = Date.now();
    expect((await live.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA })).ok).toBe(true);
    expect(counter.n).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('attacker: the same commit under a changed policy or another trust root is verified again, never answered from the first', async () => {
    const prefix = `c-${randomUUID()}`;
    const counter = { n: 0 };
    const narrowed = await compilePolicy(
      doc('ssh', {
        ssh: { allowedSigners: 'nobody@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB6o1eNs6ysA1bq8fU5J8mKqj7Xx1c2Y6k3mXh3R1Xx' },
      }),
    );
    const real = createVerdictCache(conn, prefix, {
      trustRevision: 't',
      verify: async (raw, policy, o) => (counter.n++, await new Promise((r) => setTimeout(r, 100)), verifyCommit(raw, policy, o)),
    });
    const otherRoot = createVerdictCache(conn, prefix, {
      trustRevision: 'another-root',
      verify: slow(counter, 10, { ok: false, method: 'ssh', code: 'SSH_UNKNOWN_KEY', reason: 'other root', policy: 'ssh', sha: SSH_SHA }),
    });
    // All in flight together: the first one's marker must not cover the others.
    const [first, changed, rooted] = await Promise.all([
      real.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA }),
      real.verify(sshRaw, narrowed.commit, { expectedSha: SSH_SHA }),
      otherRoot.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA }),
    ]);
    expect(first.ok).toBe(true);
    expect(changed.ok).toBe(false);
    expect(rooted.ok).toBe(false);
    expect(counter.n).toBe(3);
    expect(real.coalescing().coalesced + otherRoot.coalescing().coalesced).toBe(0);
  });

  it('an uncached verdict (Rekor down) goes to the callers that waited for it, not to later ones', async () => {
    const prefix = `c-${randomUUID()}`;
    const counter = { n: 0 };
    const down = { ok: false as const, method: 'gitsign' as const, code: 'REKOR_UNAVAILABLE', reason: 'down', policy: 'ssh', sha: SSH_SHA };
    const cache = createVerdictCache(conn, prefix, { trustRevision: 't', verify: slow(counter, 100, down) });
    const together = await Promise.all(Array.from({ length: 5 }, () => cache.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA })));
    expect(together.every((v) => !v.ok && v.code === 'REKOR_UNAVAILABLE')).toBe(true);
    expect(counter.n).toBe(1);
    await cache.verify(sshRaw, ssh.commit, { expectedSha: SSH_SHA });
    expect(counter.n).toBe(2);
  });
});
