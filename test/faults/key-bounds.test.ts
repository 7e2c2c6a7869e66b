/**
 * Bounded Redis growth: the pipeline runs briefly (signed and unsigned commits, redeliveries, the reconciler) against
 * a real redis-server, then every key under the prefix must match a row of the README's Redis key table, and a key
 * whose row promises a TTL must carry one. The table has no stale rows: each row's key is still written by the code.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_GATE, QUEUE_VERIFY } from '@gitops-gate/contracts';
import { parseVerifierKey } from '@gitops-gate/gate-core';
import { createAuditTrail } from '@gitops-gate/gate-store';
import { QUEUE_REPORT } from '@gitops-gate/github';
import { listWorkspaces } from '../lib/workspaces.js';
import { APP_KEY, deliverPush, startHarness, waitFor, type Harness } from './lib/harness.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

interface Row {
  key: string;
  bound: string;
  pattern: (prefix: string) => RegExp;
}

/** The rows of the README's "Redis keys" table. */
function keyTable(): Row[] {
  const section = README.slice(README.indexOf('### Redis keys'));
  const rows: Row[] = [];
  for (const line of section.split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const m = /^\| `(<prefix>:[^`]+)` \| [^|]+ \| (.+) \|$/.exec(line);
    if (!m) continue;
    const key = m[1]!;
    rows.push({
      key,
      bound: m[2]!,
      pattern: (prefix) => {
        const body = key
          .slice('<prefix>'.length)
          .split(/(<[^>]+>|\*)/)
          .map((part) => (part.startsWith('<') || part === '*' ? '.+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('');
        return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${body}$`);
      },
    });
  }
  return rows;
}

/** Non-test TypeScript sources of the services and shared packages. */
function sources(): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name === 'node_modules' || name === 'dist') continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(readFileSync(p, 'utf8'));
    }
  };
  // Every workspace the root package.json declares, wherever it sits (shared/core/gate-core, shared/cli, services/gate).
  for (const ws of listWorkspaces()) if (statSync(join(ws.dir, 'src'), { throwIfNoEntry: false })?.isDirectory()) walk(join(ws.dir, 'src'));
  return out.join('\n');
}

/** Every key under the harness's prefix against the table: problems, and the rows that matched some key. */
async function checkKeys(h: Harness): Promise<{ problems: string[]; seen: Set<string> }> {
  const rows = keyTable();
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await h.client.scan(cursor, 'MATCH', `${h.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  expect(keys.length).toBeGreaterThan(10);
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const key of keys.sort()) {
    const row = rows.find((r) => r.pattern(h.prefix).test(key));
    if (!row) {
      problems.push(`${key}: no row in the README's Redis key table`);
      continue;
    }
    seen.add(row.key);
    // -2: expired between SCAN and PTTL, which is fine; -1: no TTL.
    if (row.bound.startsWith('TTL') && (await h.client.pttl(key)) === -1)
      problems.push(`${key}: the table promises a TTL (${row.bound}), the key has none`);
  }
  return { problems, seen };
}

let h: Harness;

beforeAll(async () => {
  // Completed jobs kept 1 s: the retention test below sees them go within the run.
  h = await startHarness({
    env: { GATE_RECONCILE_SECONDS: '2', COMPLETED_JOB_RETENTION_SECONDS: '1' },
    keepLog: (line) => !line.includes('"level":30'),
  });
  await h.spawn('verifier');
  await h.spawn('gate');
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('Redis key bounds', () => {
  it('every key the pipeline creates matches a README row, and TTL rows carry a TTL', async () => {
    const [unsigned] = h.commits(1, { signed: false, label: 'unsigned' });
    const [a, b] = h.commits(2, { label: 'bounds' });
    const deliveries = [
      { sha: unsigned!, delivery: randomUUID() },
      { sha: a!, delivery: randomUUID() },
      { sha: b!, before: a, delivery: randomUUID() },
    ];
    for (const d of deliveries) expect((await deliverPush(h, d)).status).toBe(202);
    // A redelivery: de-duplicated by the delivery key.
    expect(JSON.parse((await deliverPush(h, deliveries[2]!)).body)).toEqual({ queued: false, duplicate: true });
    await waitFor('the deliveries decided', 90_000, async () => {
      const decided = new Set((await h.audit()).map((r) => r.deliveryId));
      return deliveries.every((d) => decided.has(d.delivery));
    });
    // Let the reconciler run (it queues only heads no final decision covers: here none, but it takes its lease).
    await waitFor('a reconcile pass', 30_000, async () => (await h.client.exists(`${h.prefix}:reconcile-lease`)) === 1);

    const { problems, seen } = await checkKeys(h);
    expect(problems).toEqual([]);
    // The run touched the main families (a changed pipeline that no longer writes them shows up here).
    for (const k of [
      '<prefix>:verify:de:<delivery id>',
      '<prefix>:verify:*',
      '<prefix>:gate:*',
      '<prefix>:audit',
      '<prefix>:audit-final:<sha>',
      '<prefix>:reconcile-lease',
    ]) {
      expect(seen, k).toContain(k);
    }
    expect((await h.audit()).some((r) => r.app === APP_KEY)).toBe(true);
    // The check can fail: a cache entry without its TTL, and a key no row documents.
    await h.client.set(`${h.prefix}:verdict:planted`, '{}');
    await h.client.set(`${h.prefix}:undocumented`, '1');
    expect((await checkKeys(h)).problems).toEqual([
      expect.stringContaining(":undocumented: no row in the README's Redis key table"),
      expect.stringContaining(':verdict:planted: the table promises a TTL'),
    ]);
  }, 180_000);

  it('completed jobs go after COMPLETED_JOB_RETENTION_SECONDS; their deliveries are still recognised as duplicates', async () => {
    /** The verify and gate job hashes (and their sub-keys) of one delivery. */
    const jobKeys = async (delivery: string): Promise<string[]> => {
      const out: string[] = [];
      for (const pattern of [`${h.prefix}:verify:gh-${delivery}-*`, `${h.prefix}:gate:verdict-${delivery}-*`]) {
        let cursor = '0';
        do {
          const [next, batch] = await h.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          out.push(...batch);
        } while (cursor !== '0');
      }
      return out;
    };
    const decided = (delivery: string) => async () => (await h.audit()).some((r) => r.deliveryId === delivery);
    const [c, d] = h.commits(2, { label: 'retention' });
    const first = { sha: c!, delivery: randomUUID() };
    expect((await deliverPush(h, first)).status).toBe(202);
    await waitFor('the first delivery decided', 60_000, decided(first.delivery));
    // Kept while younger than the retention (BullMQ removes old completed jobs when a later one completes).
    const kept = await jobKeys(first.delivery);
    expect(kept).not.toEqual([]);
    // What the verify job returned is stored compacted: the verdict's summary, no nested objects or lists.
    const verifyJob = kept.find((k) => k.includes(':verify:'))!;
    const result = JSON.parse((await h.client.hget(verifyJob, 'returnvalue')) ?? 'null') as Record<string, unknown>;
    expect(result).toMatchObject({ kind: 'commit-verdict', sha: c });
    expect(Object.values(result).every((v) => v === null || typeof v !== 'object')).toBe(true);
    await new Promise((r) => setTimeout(r, 1_500));
    const second = { sha: d!, before: c, delivery: randomUUID() };
    expect((await deliverPush(h, second)).status).toBe(202);
    await waitFor('the second delivery decided', 60_000, decided(second.delivery));
    await waitFor("the first delivery's completed jobs removed", 15_000, async () => (await jobKeys(first.delivery)).length === 0);
    // The de-duplication key outlives the job: a redelivery is still a duplicate, not a second verification.
    expect(JSON.parse((await deliverPush(h, first)).body)).toEqual({ queued: false, duplicate: true });
  }, 120_000);

  it("the gate trims the audit stream on its retention settings; the trimmed trail still verifies against the gate's key", async () => {
    const before = await h.client.xlen(`${h.prefix}:audit`);
    expect(before).toBeGreaterThan(2);
    // A gate started with a retention of 2 records (the first gate holds the trim lease for its own interval).
    await h.client.del(`${h.prefix}:audit-trim-lease`);
    Object.assign(h.stack.env, { AUDIT_RETENTION_RECORDS: '2', AUDIT_TRIM_INTERVAL_SECONDS: '1' });
    await h.spawn('gate');
    await waitFor('the audit stream trimmed', 30_000, async () => (await h.client.xlen(`${h.prefix}:audit`)) <= 2);
    const bases = await h.client.hgetall(`${h.prefix}:audit-base`);
    expect(Object.keys(bases)).toEqual([APP_KEY]);
    const verifier = parseVerifierKey(readFileSync(h.stack.auditPublicKeyFile, 'utf8'), 'gate key');
    const check = await createAuditTrail(h.client, h.prefix).verifyChain(undefined, { verifiers: [verifier] });
    expect(check).toMatchObject({ ok: true, checked: 2, problems: [] });
    const { problems, seen } = await checkKeys(h);
    expect(problems.filter((p) => !/planted|undocumented/.test(p))).toEqual([]);
    expect(seen).toContain('<prefix>:audit-base');
  }, 60_000);

  it('the table has no stale rows: each row is still written by the code', () => {
    const src = sources();
    const queues = new Set([QUEUE_VERIFY, QUEUE_GATE, QUEUE_REPORT]);
    const stale: string[] = [];
    for (const row of keyTable()) {
      const literal = row.key.slice('<prefix>:'.length).split(/<|\*/)[0]!;
      if (row.key.endsWith(':*')) {
        if (!queues.has(literal.replace(/:$/, ''))) stale.push(row.key);
      } else if (queues.has(literal.split(':')[0]!)) {
        // A key BullMQ writes under one of our queues (e.g. its de-duplication claim `verify:de:<id>`): the queue
        // must still exist; the key itself is BullMQ's.
      } else if (!src.includes(`}:${literal}`)) stale.push(row.key);
    }
    expect(stale).toEqual([]);
    expect(keyTable().length).toBeGreaterThan(20);
  });
});
