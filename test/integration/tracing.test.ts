/**
 * One delivery, one trace: webhook → verify queue → verification → gate queue → Kubernetes patch, with the trace
 * context carried in the jobs. The real receiver app, verifier and gate processors run in this process against real
 * Redis, real git and the sandbox API server, exporting to an in-memory exporter.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, evaluatePolicies } from '@gitops-gate/policy';
import { createGate } from '@gitops-gate/gate-core';
import { createAuditTrail, createKubeApplicationStore, createRedisLock } from '@gitops-gate/gate-store';
import { createGateProcessor } from '@gitops-gate/gate';
import { createGitMirror } from '@gitops-gate/git';
import { createSandboxApiServer, demoApplication, type SandboxApiServer } from '@gitops-gate/k8s-sandbox';
import { createGateQueue, createRedisConnection, createVerifyQueue } from '@gitops-gate/queue';
import { createBullIntake, createReceiverApp } from '@gitops-gate/receiver';
import { createLogger, inSpan, setupTracing, type TracingHandle } from '@gitops-gate/telemetry';
import { createTestRepo, deliveryHeaders, generateSshKey, pushPayload, startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createVerifyProcessor } from '@gitops-gate/verifier';

const silent = createLogger('trace-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const GH = 'https://github.com/org/app.git';
const exporter = new InMemorySpanExporter();
let tracing: TracingHandle;
let redis: TestRedis;
let sandbox: SandboxApiServer;

beforeAll(async () => {
  tracing = setupTracing({ service: 'gitops-gate-test', exporter });
  redis = await startTestRedis();
  sandbox = await createSandboxApiServer({ seed: [demoApplication({ name: 'app', namespace: 'argocd', repoURL: GH, branch: 'main' })] });
});
afterAll(async () => {
  await tracing.shutdown();
  await sandbox.close();
  await redis.close();
});

describe('OpenTelemetry', () => {
  it('one trace with the expected spans from the webhook to the Kubernetes patch', async () => {
    const prefix = `tr-${randomUUID().slice(0, 8)}`;
    const conn = createRedisConnection(redis.url, 'worker');
    const verifyQueue = createVerifyQueue(conn, prefix);
    const gateQueue = createGateQueue(conn, prefix);
    const dir = mkdtempSync(join(tmpdir(), 'gg-trace-'));
    const key = generateSshKey(dir, 'k');
    const repo = createTestRepo(join(dir, 'repo'));
    const sha = repo.commit('signed', { signWith: key });
    repo.push();

    const app = createReceiverApp({
      secrets: ['s'],
      intake: createBullIntake(verifyQueue, conn, { retentionSeconds: 60 }),
      logger: silent,
      registry: new Registry(),
      maxQueueDepth: 100,
    });
    const body = JSON.stringify(pushPayload({ repoUrl: GH, after: sha }));
    expect(
      (await app.inject({ method: 'POST', url: '/webhooks/github', payload: body, headers: deliveryHeaders('s', 'push', body) }))
        .statusCode,
    ).toBe(202);

    const policy = await compilePolicy({
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'p' },
      spec: { repository: '*', branches: ['*'], commits: { ssh: { allowedSigners: key.allowedSignersLine('dev@example.com') } } },
    });
    const mirror = createGitMirror({ cacheDir: join(dir, 'cache'), urlRewrites: { [GH]: repo.url } });
    const verify = createVerifyProcessor({
      mirror,
      verifyCommit: (raw, j) => evaluatePolicies(raw, [policy], { expectedSha: j.sha }),
      gateQueue,
      logger: silent,
      registry: new Registry(),
      followed: async () => ({ repoUrl: 'https://github.com/org/app', fetchUrl: GH, branches: ['main'] }),
    });
    const [vjob] = await verifyQueue.getJobs(['waiting']);
    expect(vjob?.data.trace?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await verify(vjob!);

    const kc = new KubeConfig();
    kc.loadFromString(sandbox.kubeconfigYaml());
    const gate = createGate({
      store: createKubeApplicationStore(kc),
      lock: createRedisLock(conn, prefix),
      audit: createAuditTrail(conn, prefix),
      logger: silent,
      namespaces: [],
      isAncestor: (u, a, d) => mirror.isAncestor(u, a, d),
      span: inSpan,
    });
    const [gjob] = await gateQueue.getJobs(['waiting']);
    const outcomes = await createGateProcessor(gate, silent)(gjob!);
    expect(outcomes[0]?.action).toBe('pin');

    const spans = exporter.getFinishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s]));
    for (const name of ['webhook.receive', 'verify.commit', 'git.fetch', 'signature.verify', 'gate.apply', 'kube.patch'])
      expect(byName.has(name), name).toBe(true);
    const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
    expect(traceIds.size).toBe(1);
    const parentOf = (n: string) => byName.get(n)?.parentSpanContext?.spanId;
    const idOf = (n: string) => byName.get(n)?.spanContext().spanId;
    expect(parentOf('verify.commit')).toBe(idOf('webhook.receive'));
    expect(parentOf('git.fetch')).toBe(idOf('verify.commit'));
    expect(parentOf('signature.verify')).toBe(idOf('verify.commit'));
    expect(parentOf('gate.apply')).toBe(idOf('verify.commit'));
    expect(parentOf('kube.patch')).toBe(idOf('gate.apply'));
    expect(byName.get('signature.verify')?.attributes['verify.method']).toBe('ssh');
    await verifyQueue.close();
    await gateQueue.close();
    conn.disconnect();
  });
});
