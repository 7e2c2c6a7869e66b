import { Writable } from 'node:stream';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createFollowedRepoReader,
  createGateQueue,
  createRedisConnection,
  publishFollowedRepos,
  ReplicationError,
} from '@gitops-gate/queue';
import { createLogger, createMetricsRegistry } from '@gitops-gate/telemetry';
import { deliveryHeaders, pushPayload, signBody, type TestRedis } from '@gitops-gate/testing';
import { createReceiverApp, MAX_BODY_BYTES } from './app.js';
import { createBullIntake } from './intake.js';
import { useVerifyQueue, jobCount as countJobs } from './test-queue.js';

const SECRET = 'current-secret';
const OLD_SECRET = 'previous-secret';
const SHA = '1234567890abcdef1234567890abcdef12345678';
const silent = createLogger('receiver-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));

let redis: TestRedis;
let conn: Redis;
let queue: Queue;
let prefix: string;

function makeApp(opts: { maxQueueDepth?: number; depthCacheMs?: number; followed?: boolean; afterWrite?: () => Promise<void> } = {}) {
  const reader = createFollowedRepoReader(conn, prefix, { cacheMs: 0 });
  return createReceiverApp({
    ...(opts.followed
      ? {
          isFollowed: async (u: string) => {
            const r = await reader.lookup(u);
            return r === undefined ? undefined : r !== null;
          },
        }
      : {}),
    secrets: [SECRET, OLD_SECRET],
    intake: createBullIntake(queue, conn, { retentionSeconds: 3600, depthCacheMs: opts.depthCacheMs ?? 0, afterWrite: opts.afterWrite }),
    logger: silent,
    registry: createMetricsRegistry('receiver', { defaultMetrics: false }),
    maxQueueDepth: opts.maxQueueDepth ?? 1000,
  });
}

const jobCount = () => countJobs(queue);

function push(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  return { body: text, headers: { ...deliveryHeaders(SECRET, 'push', text), ...headers } };
}

useVerifyQueue((f) => ({ redis, conn, queue, prefix } = f));

describe('POST /webhooks/github', () => {
  it('not replicated in time (WAIT) → 503 + Retry-After, and the redelivery also waits before its 202', async () => {
    let replicated = false;
    const waits: boolean[] = [];
    const app = makeApp({
      afterWrite: async () => {
        waits.push(replicated);
        if (!replicated) throw new ReplicationError('REDIS_NOT_REPLICATED', 'write reached 0 of 1 replicas within 500 ms');
      },
    });
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', fullName: 'org/app', after: SHA }));
    const first = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(first.statusCode).toBe(503);
    expect(first.json()).toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
    expect(Number(first.headers['retry-after'])).toBeGreaterThan(0);
    // GitHub redelivers (same id): the job is already stored, but a 202 still needs the replica's confirmation.
    const stillDown = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(stillDown.statusCode).toBe(503);
    replicated = true;
    const again = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(again.statusCode).toBe(202);
    expect(waits).toEqual([false, false, true]);
    expect(await jobCount()).toBe(1);
  });

  it('ping → 200, nothing queued', async () => {
    const app = makeApp();
    const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload: body,
      headers: deliveryHeaders(SECRET, 'ping', body),
    });
    expect(res.statusCode).toBe(200);
    expect(await jobCount()).toBe(0);
  });

  it('push with a valid signature → 202 and one durable verify job for the head sha', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/Org/App.git', fullName: 'Org/App', after: SHA }));
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ queued: true });
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs).toHaveLength(1);
    // The delivery id plus a random suffix (how the one-round-trip intake tells queued from duplicate).
    expect(jobs[0]?.id).toMatch(new RegExp(`^gh-${headers['x-github-delivery']}-[0-9a-f]{14}$`));
    expect(jobs[0]?.data).toMatchObject({
      v: 1,
      kind: 'commit',
      sha: SHA,
      branch: 'main',
      repoUrl: 'https://github.com/org/app',
      repoFullName: 'Org/App',
    });
  });

  it('accepts a delivery signed with a second (rotated) secret', async () => {
    const app = makeApp();
    const text = JSON.stringify(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload: text,
      headers: deliveryHeaders(OLD_SECRET, 'push', text),
    });
    expect(res.statusCode).toBe(202);
    expect(await jobCount()).toBe(1);
  });

  it('redelivery of the same X-GitHub-Delivery → 202, queued once', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
      expect(res.statusCode).toBe(202);
    }
    expect(await jobCount()).toBe(1);
  });

  it('redelivery after the job was processed and removed is still recognised', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    // Process the job and then drop it, as retention does an hour later.
    const { Worker } = await import('bullmq');
    const worker = new Worker(queue.name, async () => 'done', { connection: createRedisConnection(redis.url, 'worker'), prefix });
    await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
    await worker.close();
    // Retention (removeOnComplete by age/count) deletes the job's keys and leaves the de-duplication key (it has a TTL).
    for (const id of await queue.getCompleted().then((js) => js.map((j) => j.id ?? ''))) {
      await conn.zrem(`${prefix}:${queue.name}:completed`, id);
      await conn.del(`${prefix}:${queue.name}:${id}`);
    }
    expect(await jobCount()).toBe(0);
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(res.statusCode).toBe(202);
    expect(await jobCount()).toBe(0);
  });

  it('package and registry_package (container published) → 202, an image job', async () => {
    const app = makeApp();
    const digest = `sha256:${'ab'.repeat(32)}`;
    const pkg = {
      name: 'App',
      namespace: 'Org',
      package_type: 'CONTAINER',
      owner: { login: 'Org' },
      package_version: { version: digest, container_metadata: { tag: { name: 'v1', digest } } },
      registry: { url: 'https://ghcr.io/org' },
    };
    const repository = { full_name: 'Org/App', clone_url: 'https://github.com/Org/App.git' };
    for (const [event, key] of [
      ['package', 'package'],
      ['registry_package', 'registry_package'],
    ] as const) {
      const text = JSON.stringify({ action: 'published', [key]: pkg, repository });
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/github',
        payload: text,
        headers: deliveryHeaders(SECRET, event, text),
      });
      expect(res.statusCode).toBe(202);
    }
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs).toHaveLength(2);
    expect(jobs[0]?.data).toMatchObject({ kind: 'image', image: 'ghcr.io/org/app', digest, tags: ['v1'] });
  });

  it('other event types → 202 with queued:false, nothing queued', async () => {
    const app = makeApp();
    const text = JSON.stringify({ action: 'opened', issue: {} });
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload: text,
      headers: deliveryHeaders(SECRET, 'issues', text),
    });
    expect(res.statusCode).toBe(202);
    expect(res.json().queued).toBe(false);
    expect(await jobCount()).toBe(0);
  });

  it('tag pushes and branch deletions → 202, nothing queued, with the reason', async () => {
    const app = makeApp();
    for (const [payload, reason] of [
      [pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA, ref: 'refs/tags/v1.0.0' }), /tag push/],
      [pushPayload({ repoUrl: 'https://github.com/org/app.git', after: '0'.repeat(40), before: SHA, deleted: true }), /branch deleted/],
    ] as const) {
      const { body, headers } = push(payload);
      const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
      expect(res.statusCode).toBe(202);
      expect(res.json().reason).toMatch(reason);
    }
    expect(await jobCount()).toBe(0);
  });

  it('bad or missing signature → 401, nothing queued', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    const cases: Record<string, string>[] = [
      { ...headers, 'x-hub-signature-256': signBody('wrong-secret', body) },
      { ...headers, 'x-hub-signature-256': 'sha256=zz' },
      { ...headers, 'x-hub-signature-256': `sha1=${'0'.repeat(40)}` },
      Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'x-hub-signature-256')),
    ];
    for (const h of cases) {
      const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers: h });
      expect(res.statusCode).toBe(401);
    }
    // A valid signature over a different body (tampered payload).
    const tampered = body.replace(SHA, 'f'.repeat(40));
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: tampered, headers });
    expect(res.statusCode).toBe(401);
    expect(await jobCount()).toBe(0);
  });

  it('missing X-GitHub-Event / X-GitHub-Delivery → 400', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    for (const drop of ['x-github-event', 'x-github-delivery']) {
      const h = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== drop));
      const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers: h });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatch(new RegExp(drop, 'i'));
    }
    expect(await jobCount()).toBe(0);
  });

  it('signed body that is not JSON, not UTF-8, or not a valid payload → 400 naming what is wrong', async () => {
    const app = makeApp();
    const cases: [string | Buffer, RegExp][] = [
      ['{"ref": ', /not valid JSON/],
      [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not valid UTF-8/],
      [JSON.stringify({ ref: 'refs/heads/main', after: 'nope', before: '', repository: { full_name: 'a/b', clone_url: 'x' } }), /after/],
      [JSON.stringify({ ref: 'refs/heads/main', after: SHA, before: '' }), /repository/],
      [
        JSON.stringify({ ref: 'refs/heads/\u0000\u0000', after: SHA, before: '', repository: { full_name: 'a/b', clone_url: 'x' } }),
        /ref.*control characters/,
      ],
    ];
    for (const [body, msg] of cases) {
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/github',
        payload: body,
        headers: deliveryHeaders(SECRET, 'push', body as string),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatch(msg);
    }
    expect(await jobCount()).toBe(0);
  });

  it('accepts GitHub form encoding (payload=) with the signature over the form body', async () => {
    const app = makeApp();
    const json = JSON.stringify(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    const form = `payload=${encodeURIComponent(json)}`;
    const headers = { ...deliveryHeaders(SECRET, 'push', form), 'content-type': 'application/x-www-form-urlencoded' };
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: form, headers });
    expect(res.statusCode).toBe(202);
    expect(await jobCount()).toBe(1);
    const noField = 'other=1';
    const res2 = await app.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload: noField,
      headers: { ...deliveryHeaders(SECRET, 'push', noField), 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res2.statusCode).toBe(400);
    expect(res2.json().error).toMatch(/payload=/);
  });

  it('other content types → 415', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    for (const ct of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
      const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers: { ...headers, 'content-type': ct } });
      expect(res.statusCode).toBe(415);
    }
    expect(await jobCount()).toBe(0);
  });

  it('body over 25 MB → 413 from Content-Length, before reading the body', async () => {
    const app = makeApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as { port: number };
      const { request } = await import('node:http');
      // Announce a huge body but send only a few bytes: the answer must come without the body being read.
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/webhooks/github',
            headers: { ...deliveryHeaders(SECRET, 'push', ''), 'content-length': String(MAX_BODY_BYTES + 1) },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write('{"a":1');
      });
      expect(status).toBe(413);
    } finally {
      await app.close();
    }
    expect(await jobCount()).toBe(0);
  });

  it('chunked body that grows over 25 MB → 413', async () => {
    const app = makeApp();
    const big = Buffer.alloc(MAX_BODY_BYTES + 10, 0x20);
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload: big,
      headers: { ...deliveryHeaders(SECRET, 'push', ''), 'transfer-encoding': 'chunked' },
    });
    expect(res.statusCode).toBe(413);
  });

  it('queue depth over the configured limit → 503 with Retry-After, nothing queued', async () => {
    const app = makeApp({ maxQueueDepth: 2 });
    for (let i = 0; i < 2; i++) {
      const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
      expect((await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers })).statusCode).toBe(202);
    }
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('30');
    expect(await jobCount()).toBe(2);
  });

  it('Redis unreachable → 503 with Retry-After; readyz 503; back to 202 when Redis returns', async () => {
    const app = makeApp();
    await redis.stop(true);
    try {
      const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
      const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await redis.start();
    }
    // ioredis reconnects on its own; the next delivery goes through.
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    let status = 0;
    for (let i = 0; i < 50 && status !== 202; i++) {
      status = (await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers })).statusCode;
      if (status !== 202) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(202);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('serves Prometheus metrics with delivery outcomes', async () => {
    const app = makeApp();
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/org/app.git', after: SHA }));
    await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    await app.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload: body,
      headers: { ...headers, 'x-hub-signature-256': 'sha256=00' },
    });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(/gitops_gate_deliveries_total\{[^}]*event="push"[^}]*outcome="queued"[^}]*\} 1/);
    expect(res.body).toMatch(/outcome="bad_signature"/);
  });
});

describe('unused queue helper', () => {
  it('gate queue can be created on the same connection', async () => {
    const q = createGateQueue(conn, prefix);
    expect(q.name).toBe('gate');
    await q.close();
  });
});

describe('only repositories the gate follows are queued (issue #10.2)', () => {
  const followedRepo = { repoUrl: 'https://github.com/org/app', fetchUrl: 'https://github.com/org/app.git', branches: ['main'] };
  // The producer connection has no offline queue: publish only once it is connected (also when run on its own).
  beforeAll(() => new Promise<void>((resolve) => (conn.status === 'ready' ? resolve() : conn.once('ready', () => resolve()))));

  it('a valid delivery for a repository nobody follows → 202 not followed, no job (attacker holds the webhook secret)', async () => {
    await publishFollowedRepos(conn, prefix, [followedRepo]);
    const app = makeApp({ followed: true });
    const { body, headers } = push(
      pushPayload({ repoUrl: 'https://github.com/attacker/other.git', fullName: 'attacker/other', after: SHA }),
    );
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ queued: false, reason: 'not followed' });
    expect(await jobCount()).toBe(0);
  });

  it('a followed repository, in any spelling, is queued', async () => {
    await publishFollowedRepos(conn, prefix, [followedRepo]);
    const app = makeApp({ followed: true });
    const { body, headers } = push(pushPayload({ repoUrl: 'https://github.com/Org/App', fullName: 'Org/App', after: SHA }));
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(res.json()).toEqual({ queued: true });
    expect(await jobCount()).toBe(1);
  });

  it('before any gate published the set, deliveries are queued (the verifier checks again before fetching)', async () => {
    const app = makeApp({ followed: true });
    const { body, headers } = push(
      pushPayload({ repoUrl: 'https://github.com/attacker/other.git', fullName: 'attacker/other', after: SHA }),
    );
    const res = await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers });
    expect(res.json()).toEqual({ queued: true });
  });
});
