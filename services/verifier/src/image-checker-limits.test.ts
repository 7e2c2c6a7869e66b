// Issue #17 point 4, the verifier's side: a costly rejection (deadline, byte budget) is remembered for a while, so a
// stream of package events for one hostile digest does not cost a verifier its deadline (or budget) every time.
// Real redis-server; a loopback "registry" that stalls on one digest and answers 404 for the others.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '@gitops-gate/policy';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createImageChecker } from './image-checker.js';

const STALLS = 'a'.repeat(64);
let redis: TestRedis;
let conn: Redis;
let registry: Server;
let host: string;
let requests = 0;

beforeAll(async () => {
  redis = await startTestRedis();
  conn = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  registry = createServer((req, res) => {
    requests++;
    if ((req.url ?? '').includes(STALLS)) return; // never answers
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', () => r()));
  host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
});
afterAll(async () => {
  conn?.disconnect();
  await redis?.close();
  registry?.closeAllConnections();
  await new Promise<void>((r) => registry?.close(() => r()));
});

describe('costly image rejections are cached for a limited time', () => {
  it('IMAGE_VERIFY_DEADLINE is remembered for rejectionTtlSeconds; an ordinary rejection is not', { timeout: 15_000 }, async () => {
    const image = `${host}/org/app`;
    const policy = await compilePolicy({
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'p', namespace: 'argocd' },
      spec: {
        repository: 'https://github.com/org/app',
        branches: ['main'],
        commits: { gitsign: [{ identity: 'a@example.com', issuer: 'https://accounts.google.com' }] },
        images: [
          {
            repository: image,
            keyless: [
              {
                identity: 'https://github.com/org/app/.github/workflows/r.yml@refs/heads/main',
                issuer: 'https://token.actions.githubusercontent.com',
              },
            ],
          },
        ],
      },
    });
    const lookups: boolean[] = [];
    const check = createImageChecker({
      policies: { current: async () => [policy] },
      credentials: {},
      insecureHosts: [host],
      limits: { deadlineMs: 300 },
      cache: { redis: conn, prefix: 't', rejectionTtlSeconds: 120, onLookup: (hit) => lookups.push(hit) },
    });
    const job = (hex: string) => ({
      v: 1 as const,
      kind: 'image' as const,
      deliveryId: `d-${hex.slice(0, 4)}`,
      repoUrl: 'https://github.com/org/app',
      repoFullName: 'org/app',
      image,
      digest: `sha256:${hex}`,
      tags: [],
      receivedAt: new Date().toISOString(),
    });

    const first = await check(job(STALLS));
    expect(first).toMatchObject({ ok: false, code: 'IMAGE_VERIFY_DEADLINE' });
    const before = requests;
    const started = performance.now();
    const again = await check(job(STALLS));
    expect(again).toMatchObject({ ok: false, code: 'IMAGE_VERIFY_DEADLINE' });
    expect(requests).toBe(before); // the registry was not asked again
    expect(performance.now() - started).toBeLessThan(250); // and the deadline was not spent again
    expect(lookups).toEqual([false, true]);
    const keys = await conn.keys('t:image-verdict-cache:*');
    expect(keys).toHaveLength(1);
    const ttl = await conn.ttl(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120);

    // "Not found" (not signed yet, not pushed yet) must not stick: it is asked again next time.
    const other = 'b'.repeat(64);
    expect(await check(job(other))).toMatchObject({ ok: false, code: 'IMAGE_NOT_FOUND' });
    expect(await check(job(other))).toMatchObject({ ok: false, code: 'IMAGE_NOT_FOUND' });
    expect(lookups).toEqual([false, true, false, false]);
  });
});
