/**
 * Repository identity and per-repository secrets at the receiver, against the GitHub API emulator (real Octokit,
 * real Redis, real BullMQ): a delivery is queued only for the repository id the Application follows, from an
 * installation that holds it.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGitHubClient, createIdentityCheck, deliveryIdentity, pushDeliveryPayload, signedDeliveryHeaders } from '@gitops-gate/github';
import { startGitHubEmulator, type GitHubEmulator } from '@gitops-gate/github-emulator';
import { createLogger, createMetricsRegistry } from '@gitops-gate/telemetry';
import { createReceiverApp } from './app.js';
import { createBullIntake } from './intake.js';
import { useVerifyQueue } from './test-queue.js';

const SECRET = 'app-webhook-secret';
const SHA = 'b'.repeat(40);
const silent = createLogger('receiver-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

let conn: Redis;
let queue: Queue;
let prefix: string;
let gh: GitHubEmulator;

useVerifyQueue((f) => ({ conn, queue, prefix } = f));
beforeEach(async () => {
  gh = await startGitHubEmulator({
    appId: 9,
    appPublicKey: publicKey,
    installations: [
      {
        id: 1,
        account: 'org',
        repositories: [
          { id: 101, owner: 'org', name: 'app' },
          { id: 102, owner: 'org', name: 'tool' },
        ],
      },
      { id: 2, account: 'evil', repositories: [{ id: 201, owner: 'evil', name: 'app' }] },
    ],
  });
});
afterEach(async () => {
  await queue.close();
  await gh.close();
});

function makeApp(repoSecrets?: Record<string, string[]>) {
  const client = createGitHubClient({
    apiUrl: gh.url,
    app: { appId: 9, privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() },
    writeMinTimeMs: 0,
    retryAfterBaseValue: 1,
  });
  const identity = createIdentityCheck({ client, redis: conn, prefix });
  return createReceiverApp({
    secrets: [SECRET],
    repoSecrets,
    checkIdentity: (url, payload) => identity.check(url, deliveryIdentity(payload)),
    intake: createBullIntake(queue, conn, { retentionSeconds: 3600, depthCacheMs: 0 }),
    logger: silent,
    registry: createMetricsRegistry('receiver', { defaultMetrics: false }),
    maxQueueDepth: 1000,
  });
}

const head = {
  id: SHA,
  treeId: 'c'.repeat(40),
  message: 'm',
  timestamp: new Date().toISOString(),
  author: { name: 'd', email: 'd@x' },
  committer: { name: 'd', email: 'd@x' },
};
function delivery(
  o: { fullName?: string; cloneUrl?: string; repositoryId: number; installationId?: number; deliveryId?: string },
  secret = SECRET,
) {
  const fullName = o.fullName ?? 'org/app';
  const body = JSON.stringify(
    pushDeliveryPayload({
      cloneUrl: o.cloneUrl ?? `https://github.com/${fullName}.git`,
      fullName,
      branch: 'main',
      head,
      repositoryId: o.repositoryId,
      installationId: o.installationId,
    }),
  );
  return {
    method: 'POST' as const,
    url: '/webhooks/github',
    payload: body,
    headers: signedDeliveryHeaders(secret, 'push', body, o.deliveryId),
  };
}
const jobs = async () =>
  Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed')).reduce((a, b) => a + b, 0);

describe('repository identity at the receiver', () => {
  it('a delivery for the followed repository from its installation is queued', async () => {
    const res = await makeApp().inject(delivery({ repositoryId: 101, installationId: 1 }));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ queued: true });
    expect(await jobs()).toBe(1);
  });

  it('attacker: App-signed delivery naming org/app with another repository id → 403 queued:false, nothing queued', async () => {
    const res = await makeApp().inject(delivery({ repositoryId: 102, installationId: 1 }));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ queued: false, code: 'REPOSITORY_ID_MISMATCH' });
    expect(res.json().reason).toContain('102');
    expect(await jobs()).toBe(0);
  });

  it('attacker: another installation of the App delivers for org/app → 403, nothing queued', async () => {
    const res = await makeApp().inject(delivery({ repositoryId: 101, installationId: 2 }));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ queued: false, code: 'NOT_IN_INSTALLATION' });
    const unknown = await makeApp().inject(delivery({ repositoryId: 101, installationId: 5 }));
    expect(unknown.statusCode).toBe(403);
    expect(await jobs()).toBe(0);
  });

  it('attacker: a repository re-created under the followed name (new id) after a rename → 403', async () => {
    expect((await makeApp().inject(delivery({ repositoryId: 101, installationId: 1 }))).statusCode).toBe(202);
    gh.renameRepo(101, 'org', 'app-old');
    gh.addRepo(1, { id: 777, owner: 'org', name: 'app' });
    const res = await makeApp().inject(delivery({ repositoryId: 777, installationId: 1 }));
    expect(res.statusCode).toBe(403);
    expect(await jobs()).toBe(1);
  });

  it('GitHub unreachable → 503 with Retry-After, nothing queued (fail closed)', async () => {
    gh.failNext(1000, 502);
    const res = await makeApp().inject(delivery({ repositoryId: 101, installationId: 1 }));
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('30');
    expect(await jobs()).toBe(0);
  });
});

describe('per-repository webhook secrets', () => {
  it("a delivery signed with its repository's own secret is accepted; attacker: that secret cannot sign for another repository", async () => {
    const app = makeApp({ 'org/tool': ['tool-secret'] });
    const own = await app.inject(delivery({ fullName: 'org/tool', repositoryId: 102, installationId: 1 }, 'tool-secret'));
    expect(own.statusCode).toBe(202);
    const forged = await app.inject(delivery({ repositoryId: 101, installationId: 1 }, 'tool-secret'));
    expect(forged.statusCode).toBe(401);
    expect(await jobs()).toBe(1);
  });

  it("attacker: a repository's own secret, its full_name, and another repository's clone URL → 401, nothing queued", async () => {
    const app = makeApp({ 'org/tool': ['tool-secret'] });
    const res = await app.inject(
      delivery({ fullName: 'org/tool', cloneUrl: 'https://github.com/org/app.git', repositoryId: 102, installationId: 1 }, 'tool-secret'),
    );
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'SECRET_REPOSITORY_MISMATCH' });
    const ghe = await app.inject(
      delivery({ fullName: 'org/tool', cloneUrl: 'https://ghe.example/org/app.git', repositoryId: 102, installationId: 1 }, 'tool-secret'),
    );
    expect(ghe.statusCode).toBe(401);
    expect(await jobs()).toBe(0);
  });

  it("attacker: a repository's secret claims a delivery id first; GitHub's delivery with that id for another repository is still queued", async () => {
    const app = makeApp({ 'org/tool': ['tool-secret'] });
    const id = randomUUID();
    // The tool repository's secret holder sends a valid delivery for their own repository under an id GitHub will use.
    const squat = await app.inject(delivery({ fullName: 'org/tool', repositoryId: 102, installationId: 1, deliveryId: id }, 'tool-secret'));
    expect(squat.json()).toMatchObject({ queued: true });
    const real = await app.inject(delivery({ repositoryId: 101, installationId: 1, deliveryId: id }));
    expect(real.statusCode).toBe(202);
    expect(real.json()).toMatchObject({ queued: true });
    expect(await jobs()).toBe(2);
    // Each secret still de-duplicates its own redeliveries.
    expect((await app.inject(delivery({ repositoryId: 101, installationId: 1, deliveryId: id }))).json()).toMatchObject({
      duplicate: true,
    });
    expect(
      (await app.inject(delivery({ fullName: 'org/tool', repositoryId: 102, installationId: 1, deliveryId: id }, 'tool-secret'))).json(),
    ).toMatchObject({ duplicate: true });
    expect(await jobs()).toBe(2);
  });
});
