/**
 * Audit retention: trimmed chains still verify from their signed trim base; a Redis writer who deletes the oldest
 * records and writes a base of their own is caught; `audit export --mark` gates trimming when configured so.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointOrigin, formatCheckpoint, trimOrigin, type CheckpointSigner, type DecisionRecord } from '@gitops-gate/gate-core';
import { auditKeys, createAuditTrail, trimAuditTrail } from '@gitops-gate/gate-store';
import { createRedisConnection } from '@gitops-gate/queue';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { newCheckpointKey, runCli } from './test-cli.js';

const PREFIX = 'gitops-gate';
const K = auditKeys(PREFIX);
const dir = mkdtempSync(join(tmpdir(), 'audit-ret-'));

const newKey = (name: string) => newCheckpointKey(dir, name);

let redis: TestRedis;
let conn: Redis;

const run = (...argv: string[]) => runCli(argv, { REDIS_URL: redis.url });

/** Records alternating between Applications, so a trim cuts through several chains. */
async function decide(signer: CheckpointSigner, apps: string[], n: number): Promise<DecisionRecord[]> {
  const audit = createAuditTrail(conn, PREFIX, undefined, undefined, { signer, cluster: 'test' });
  const out: DecisionRecord[] = [];
  for (let i = 0; i < n; i++) {
    const app = apps[i % apps.length]!;
    out.push(
      await audit.record({
        deliveryId: randomUUID(),
        repo: 'https://github.com/org/app',
        branch: 'main',
        sha: randomUUID().replace(/-/g, '').padEnd(40, '0'),
        app,
        action: 'pin',
        reason: 'verified',
        verdict: { outcome: 'verified', method: 'ssh', code: 'VERIFIED', reasons: [] },
      }),
    );
  }
  return out;
}

const policy = { maxAgeSeconds: 0, maxRecords: 0, requireExport: false };

beforeEach(async () => {
  redis = await startTestRedis();
  conn = createRedisConnection(redis.url, 'worker');
});
afterEach(async () => {
  conn.disconnect();
  await redis.close();
});

describe('audit retention', () => {
  it('trims by count; the retained records verify from the signed trim base', async () => {
    const k = newKey('gate');
    const recs = await decide(k.signer, ['argocd/a', 'argocd/b'], 9);
    const r = await trimAuditTrail(conn, PREFIX, { ...policy, maxRecords: 4 }, new Date(), { signer: k.signer, cluster: 'test' });
    expect(r).toEqual({ trimmed: 5, apps: 2, heldForExport: false });
    expect(await conn.xlen(K.stream)).toBe(4);
    expect(await run('audit', '--verify-chain', '--public-key', k.pubFile)).toEqual({
      code: 0,
      out: 'audit chain intact: 4 records checked, 2 signed checkpoints verified\n',
      err: '',
    });
    // The newest trimmed decision of each Application still answers has(); older trimmed ids are gone (bounded).
    const audit = createAuditTrail(conn, PREFIX);
    expect(await audit.has(recs[4]!.id)).toBe(true);
    expect(await audit.has(recs[3]!.id)).toBe(true);
    expect(await audit.has(recs[0]!.id)).toBe(false);
    // New records continue the chain after a trim.
    await decide(k.signer, ['argocd/a'], 2);
    expect((await run('audit', '--verify-chain', '--public-key', k.pubFile)).code).toBe(0);
  });

  it('trims by age, also a whole chain, and again later', async () => {
    const k = newKey('gate');
    await decide(k.signer, ['argocd/a', 'argocd/b'], 4);
    const later = new Date(Date.now() + 3_600_000);
    expect(
      (await trimAuditTrail(conn, PREFIX, { ...policy, maxAgeSeconds: 60 }, later, { signer: k.signer, cluster: 'test' })).trimmed,
    ).toBe(4);
    expect(await conn.xlen(K.stream)).toBe(0);
    expect((await run('audit', '--verify-chain', '--public-key', k.pubFile)).code).toBe(0);
    await decide(k.signer, ['argocd/a'], 3);
    expect(
      (await trimAuditTrail(conn, PREFIX, { ...policy, maxRecords: 1 }, new Date(), { signer: k.signer, cluster: 'test' })).trimmed,
    ).toBe(2);
    expect(await run('audit', '--verify-chain', '--public-key', k.pubFile)).toMatchObject({
      code: 0,
      out: 'audit chain intact: 1 records checked, 2 signed checkpoints verified\n',
    });
  });

  it('attacker: deleting the oldest records with a forged trim base is detected', async () => {
    const k = newKey('gate');
    const mallory = newKey('gitops-gate-audit');
    const recs = await decide(k.signer, ['argocd/a'], 5);
    const ids = (await conn.xrange(K.stream, '-', '+')).map(([id]) => id);
    // Delete the two oldest records and write the base a trim would have written, unsigned.
    await conn.xdel(K.stream, ids[0]!, ids[1]!);
    const base = { size: 2, hash: recs[1]!.hash, lastId: recs[1]!.id };
    await conn.hset(K.base, 'argocd/a', JSON.stringify(base));
    let r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.code).toBe(1);
    expect(r.err).toContain('tampered: argocd/a: trim base rejected (unsigned)');
    // Signed by a key the verifier does not trust.
    const forged = mallory.signer.sign(formatCheckpoint({ origin: trimOrigin('test', 'argocd/a'), size: 2, rootHash: recs[1]!.hash }));
    await conn.hset(K.base, 'argocd/a', JSON.stringify({ ...base, note: forged }));
    r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.err).toContain('argocd/a: trim base rejected (signed by none of the trusted keys');
    // The gate's own head checkpoint at size 2 (from its logs) replayed as a trim base: another origin, refused.
    const headNote = k.signer.sign(formatCheckpoint({ origin: checkpointOrigin('test', 'argocd/a'), size: 2, rootHash: recs[1]!.hash }));
    await conn.hset(K.base, 'argocd/a', JSON.stringify({ ...base, note: headNote }));
    r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.err).toContain('argocd/a: trim base rejected (signed for gitops-gate/test/argocd/a)');
    // A genuine base whose JSON claims more than its note.
    const genuine = k.signer.sign(formatCheckpoint({ origin: trimOrigin('test', 'argocd/a'), size: 1, rootHash: recs[0]!.hash }));
    await conn.hset(K.base, 'argocd/a', JSON.stringify({ ...base, note: genuine }));
    r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.err).toContain('argocd/a: trim base rejected (its signed note names another size or hash)');
    // Without a trim base at all the gap shows as a broken chain.
    await conn.hdel(K.base, 'argocd/a');
    expect((await run('audit', '--verify-chain')).err).toContain('does not follow the previous record');
  });

  it('with requireExport, keeps records until `audit export --mark` wrote them out', async () => {
    const k = newKey('gate');
    await decide(k.signer, ['argocd/a'], 4);
    const strict = { ...policy, maxRecords: 1, requireExport: true };
    expect(await trimAuditTrail(conn, PREFIX, strict, new Date())).toEqual({ trimmed: 0, apps: 0, heldForExport: true });
    const file = join(dir, `export-${randomUUID()}.jsonl`);
    const ex = await run('audit', 'export', '--output', file, '--mark');
    expect(ex.code).toBe(0);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DecisionRecord);
    expect(lines.map((l) => l.app)).toEqual(['argocd/a', 'argocd/a', 'argocd/a', 'argocd/a']);
    await decide(k.signer, ['argocd/a'], 2);
    // The 4 exported records go; of the 2 new ones the count would trim one, but it is not exported yet.
    expect(await trimAuditTrail(conn, PREFIX, strict, new Date(), { signer: k.signer, cluster: 'test' })).toEqual({
      trimmed: 4,
      apps: 1,
      heldForExport: true,
    });
    expect(await conn.xlen(K.stream)).toBe(2);
    // --since-mark to stdout: only what came after.
    const next = await run('audit', 'export', '--since-mark');
    expect(next.out.trim().split('\n')).toHaveLength(2);
    expect((await run('audit', '--verify-chain', '--public-key', k.pubFile)).code).toBe(0);
  });
});
