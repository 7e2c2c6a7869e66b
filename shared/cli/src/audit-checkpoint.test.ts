/**
 * `gitops-gate audit --verify-chain --public-key`: the attacker can write Redis but does not hold the gate's key.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointOrigin, formatCheckpoint, recordHash, type CheckpointSigner, type DecisionRecord } from '@gitops-gate/gate-core';
import { createAuditTrail } from '@gitops-gate/gate-store';
import { createRedisConnection } from '@gitops-gate/queue';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { newCheckpointKey, runCli } from './test-cli.js';

const PREFIX = 'gitops-gate';
const STREAM = `${PREFIX}:audit`;
const dir = mkdtempSync(join(tmpdir(), 'audit-cp-'));

const newKey = (name: string) => newCheckpointKey(dir, name);

let redis: TestRedis;
let conn: Redis;

const run = (...argv: string[]) => runCli(argv, { REDIS_URL: redis.url });

async function decide(signer: CheckpointSigner | undefined, app: string, n: number): Promise<void> {
  const audit = createAuditTrail(conn, PREFIX, undefined, undefined, signer ? { signer, cluster: 'test' } : undefined);
  for (let i = 0; i < n; i++) {
    await audit.record({
      deliveryId: randomUUID(),
      repo: 'https://github.com/org/app',
      branch: 'main',
      sha: randomUUID().replace(/-/g, '').padEnd(40, '0'),
      app,
      action: 'pin',
      reason: 'verified',
      verdict: { outcome: 'verified', method: 'ssh', code: 'VERIFIED', signer: 'dev@example.com', reasons: [] },
    });
  }
}

/** What a Redis writer can do: rewrite every record of `app`, re-hash the whole chain, move the head. */
async function rewriteChain(app: string, edit: (r: DecisionRecord) => void): Promise<void> {
  const entries = (await conn.xrange(STREAM, '-', '+')) as [string, string[]][];
  let prev = '0'.repeat(64);
  for (const [id, fields] of entries) {
    const rec = JSON.parse(fields[fields.indexOf('record') + 1]!) as DecisionRecord;
    if (rec.app !== app) continue;
    edit(rec);
    const { hash: _old, ...rest } = { ...rec, prevHash: prev };
    const forged: DecisionRecord = { ...rest, hash: recordHash(rest) };
    prev = forged.hash;
    await conn.xdel(STREAM, id);
    await conn.xadd(STREAM, '*', 'app', app, 'sha', forged.sha, 'record', JSON.stringify(forged));
  }
  await conn.set(`${PREFIX}:audit-head:${app}`, prev);
}

beforeEach(async () => {
  redis = await startTestRedis();
  conn = createRedisConnection(redis.url, 'worker');
});
afterEach(async () => {
  conn.disconnect();
  await redis.close();
});

describe('gitops-gate audit --verify-chain --public-key', () => {
  it('passes on the chains the gate wrote, and says how many checkpoints it verified', async () => {
    const k = newKey('k1');
    await decide(k.signer, 'argocd/a', 3);
    await decide(k.signer, 'argocd/b', 2);
    const r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r).toEqual({ code: 0, out: 'audit chain intact: 5 records checked, 2 signed checkpoints verified\n', err: '' });
  });

  it('attacker: every record rewritten and re-hashed — the hash chain alone passes, the signed checkpoint does not', async () => {
    const k = newKey('k1');
    await decide(k.signer, 'argocd/a', 3);
    await decide(k.signer, 'argocd/b', 2);
    await rewriteChain('argocd/a', (r) => (r.verdict.signer = 'mallory@example.com'));
    // The documented limit: without the key, a consistent rewrite is not detectable.
    expect((await run('audit', '--verify-chain')).code).toBe(0);
    const r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^tampered: argocd\/a: records were rewritten: the signed checkpoint of 3 records names head [0-9a-f]{64}, the chain has [0-9a-f]{64}\n$/,
    );
  });

  it('attacker: a checkpoint re-signed with a key of their own is refused', async () => {
    const k = newKey('k1');
    const mallory = newKey('mallory');
    await decide(k.signer, 'argocd/a', 2);
    await rewriteChain('argocd/a', (r) => (r.reason = 'nothing to see'));
    // Re-sign the forged head with the attacker's key, in the gate's exact format.
    const head = await conn.get(`${PREFIX}:audit-head:argocd/a`);
    const body = formatCheckpoint({ origin: checkpointOrigin('test', 'argocd/a'), size: 2, rootHash: head! });
    await conn.hset(`${PREFIX}:audit-checkpoint`, 'argocd/a', mallory.signer.sign(body));
    const r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'tampered: argocd/a: signed checkpoint rejected: signed by none of the trusted keys (signatures by: gitops-gate-audit)',
    );
  });

  it('attacker: deleting the checkpoint, appending an unsigned record, or dropping the newest records is reported', async () => {
    const k = newKey('k1');
    await decide(k.signer, 'argocd/a', 2);
    await decide(k.signer, 'argocd/b', 3);
    await decide(k.signer, 'argocd/c', 2);
    await conn.hdel(`${PREFIX}:audit-checkpoint`, 'argocd/a');
    await decide(undefined, 'argocd/b', 1); // chained correctly, but by someone without the key
    // Drop c's newest record and move its head back: the hash chain is consistent again.
    const entries = (await conn.xrange(STREAM, '-', '+')) as [string, string[]][];
    const cs = entries.filter(([, f]) => f[f.indexOf('app') + 1] === 'argocd/c');
    await conn.xdel(STREAM, cs[1]![0]);
    await conn.set(`${PREFIX}:audit-head:argocd/c`, (JSON.parse(cs[0]![1][cs[0]![1].indexOf('record') + 1]!) as DecisionRecord).hash);
    expect((await run('audit', '--verify-chain')).code).toBe(0);
    const r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n').sort()).toEqual([
      'tampered: argocd/a: no signed checkpoint covers its 2 records',
      'tampered: argocd/b: 1 of 4 records are not covered by the signed checkpoint (added without the key)',
      'tampered: argocd/c: records were deleted: the signed checkpoint covers 2, the chain has 1',
    ]);
  });

  it("attacker: another Application's valid checkpoint does not vouch for this chain", async () => {
    const k = newKey('k1');
    await decide(k.signer, 'argocd/a', 1);
    await decide(k.signer, 'argocd/b', 1);
    const cpOfA = await conn.hget(`${PREFIX}:audit-checkpoint`, 'argocd/a');
    await conn.hset(`${PREFIX}:audit-checkpoint`, 'argocd/b', cpOfA!);
    const r = await run('audit', '--verify-chain', '--public-key', k.pubFile);
    expect(r.code).toBe(1);
    expect(r.err).toContain('tampered: argocd/b: signed checkpoint is for gitops-gate/test/argocd/a, not this Application');
  });

  it('attacker: rolling a chain back to an older signed state (or deleting it) is caught by checkpoints kept outside Redis', async () => {
    const k = newKey('k1');
    const logged: string[] = [];
    const audit = createAuditTrail(conn, PREFIX, undefined, (_r, cp) => logged.push(cp!), { signer: k.signer, cluster: 'test' });
    const record = (app: string) =>
      audit.record({
        deliveryId: randomUUID(),
        repo: 'https://github.com/org/app',
        branch: 'main',
        sha: 'a'.repeat(40),
        app,
        action: 'pin',
        reason: 'verified',
        verdict: { outcome: 'verified', method: 'ssh', code: 'VERIFIED', reasons: [] },
      });
    await record('argocd/a');
    const second = await record('argocd/a');
    const signedAtTwo = await conn.hget(`${PREFIX}:audit-checkpoint`, 'argocd/a');
    await record('argocd/a');
    await record('argocd/b');
    // Roll a back to two records: drop the newest, restore head, size and the (validly signed) older checkpoint.
    const entries = (await conn.xrange(STREAM, '-', '+')) as [string, string[]][];
    const ofA = entries.filter(([, f]) => f[f.indexOf('app') + 1] === 'argocd/a');
    await conn.xdel(STREAM, ofA[2]![0]);
    await conn.set(`${PREFIX}:audit-head:argocd/a`, second.hash);
    await conn.set(`${PREFIX}:audit-size:argocd/a`, '2');
    await conn.hset(`${PREFIX}:audit-checkpoint`, 'argocd/a', signedAtTwo!);
    // And make b vanish entirely.
    await conn.xdel(STREAM, entries.find(([, f]) => f[f.indexOf('app') + 1] === 'argocd/b')![0]);
    await conn.hdel(`${PREFIX}:audit-checkpoint`, 'argocd/b');
    await conn.del(`${PREFIX}:audit-head:argocd/b`, `${PREFIX}:audit-size:argocd/b`);
    // What Redis holds is consistent and validly signed: the documented limit.
    expect((await run('audit', '--verify-chain', '--public-key', k.pubFile)).code).toBe(0);
    // The log lines' checkpoints, as signed notes and as JSON strings (what a log pipeline keeps).
    const notes = join(dir, 'checkpoints.txt');
    writeFileSync(notes, logged.join('\n'));
    const json = join(dir, 'checkpoints.jsonl');
    writeFileSync(json, logged.map((n) => JSON.stringify(n)).join('\n'));
    for (const file of [notes, json]) {
      const r = await run('audit', '--verify-chain', '--public-key', k.pubFile, '--checkpoint', file);
      expect(r.code, file).toBe(1);
      expect(r.err.trim().split('\n').sort()).toEqual([
        'tampered: argocd/a: records were deleted or rolled back: an external checkpoint covers 3, the chain has 2',
        'tampered: argocd/b: records were deleted or rolled back: an external checkpoint covers 1, the chain has 0',
      ]);
    }
    // An external checkpoint must be signed by a trusted key too.
    const mallory = newKey('mallory');
    const forged = join(dir, 'forged.txt');
    writeFileSync(
      forged,
      mallory.signer.sign(formatCheckpoint({ origin: checkpointOrigin('test', 'argocd/a'), size: 9, rootHash: second.hash })),
    );
    expect((await run('audit', '--verify-chain', '--public-key', k.pubFile, '--checkpoint', forged)).err).toContain(
      'argocd/a: signed checkpoint rejected: signed by none of the trusted keys',
    );
    expect(await run('audit', '--verify-chain', '--checkpoint', notes)).toMatchObject({
      code: 2,
      err: expect.stringContaining('--checkpoint needs --public-key'),
    });
  });

  it('key rotation: checkpoints by the old and the new key both verify when both keys are given', async () => {
    const k1 = newKey('k1');
    const k2 = newKey('k2');
    await decide(k1.signer, 'argocd/a', 2);
    await decide(k1.signer, 'argocd/b', 1);
    await decide(k2.signer, 'argocd/a', 1); // the gate restarted with the new key: a's newest checkpoint is by k2
    expect((await run('audit', '--verify-chain', '--public-key', k1.pubFile, '--public-key', k2.pubFile)).code).toBe(0);
    const both = join(dir, 'both.pub');
    writeFileSync(both, `# old and new\n${k1.signer.verifier.text}\n${k2.signer.verifier.text}\n`);
    expect((await run('audit', '--verify-chain', '--public-key', both)).code).toBe(0);
    const onlyOld = await run('audit', '--verify-chain', '--public-key', k1.pubFile);
    expect(onlyOld.code).toBe(1);
    expect(onlyOld.err).toMatch(/argocd\/a: signed checkpoint rejected: signed by none of the trusted keys/);
  });

  it('a chain recorded before signing was enabled is covered by the first signed checkpoint', async () => {
    const k = newKey('k1');
    await decide(undefined, 'argocd/a', 2);
    await conn.del(`${PREFIX}:audit-size:argocd/a`); // as written by a gate from before chain sizes were kept
    await decide(k.signer, 'argocd/a', 1);
    expect((await run('audit', '--verify-chain', '--public-key', k.pubFile, '--app', 'argocd/a')).code).toBe(0);
  });

  it('bad key files are usage errors naming the file', async () => {
    const bad = join(dir, 'bad.pub');
    writeFileSync(bad, 'not a key\n');
    expect(await run('audit', '--verify-chain', '--public-key', bad)).toMatchObject({
      code: 2,
      err: expect.stringContaining(`--public-key ${bad}: expected <name>+<8 hex digits>+<base64 key>`),
    });
    expect(await run('audit', '--verify-chain', '--public-key', join(dir, 'missing.pub'))).toMatchObject({
      code: 2,
      err: expect.stringContaining('ENOENT'),
    });
    expect(await run('audit', '--public-key', bad)).toMatchObject({
      code: 2,
      err: expect.stringContaining('--public-key needs --verify-chain'),
    });
  });
});
