/**
 * Autoscaling: KEDA scales the verifier on BullMQ's verify wait list (checked against a real Redis and BullMQ),
 * the optional HPA on the exported queue metric, the receiver on CPU.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QUEUE_VERIFY } from '@gitops-gate/contracts';
import { createRedisConnection, createVerifyQueue } from '@gitops-gate/queue';
import { freePort, startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, one, OVERLAYS, renderOverlay, renderWithComponents, type K8sObject } from './lib/render.js';

const configOf = (docs: K8sObject[]) => find(docs, 'ConfigMap').find((c) => c.metadata.name.startsWith('gitops-gate-config'))!.data;

function autoscalersOf(docs: K8sObject[], deployment: string): K8sObject[] {
  return docs.filter(
    (d) =>
      (d.kind === 'HorizontalPodAutoscaler' || d.kind === 'ScaledObject') &&
      d.spec.scaleTargetRef.name === deployment &&
      (d.spec.scaleTargetRef.kind ?? 'Deployment') === 'Deployment',
  );
}

describe.each(OVERLAYS)('KEDA ScaledObject (%s)', (overlay) => {
  const docs = () => renderOverlay(overlay);

  it('scales the verifier Deployment between 1 and 10 replicas', () => {
    const so = one(docs(), 'ScaledObject', 'gitops-gate-verifier');
    expect(so.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'gitops-gate-verifier' });
    expect(one(docs(), 'Deployment', so.spec.scaleTargetRef.name)).toBeDefined();
    expect(so.spec.minReplicaCount).toBe(1);
    expect(so.spec.maxReplicaCount).toBe(10);
  });

  it("watches the BullMQ wait list of the verify queue under the installation's QUEUE_PREFIX", () => {
    const so = one(docs(), 'ScaledObject', 'gitops-gate-verifier');
    expect(so.spec.triggers).toHaveLength(1);
    const [trigger] = so.spec.triggers;
    expect(trigger.type).toBe('redis');
    expect(trigger.metadata.listName).toBe(`${configOf(docs()).QUEUE_PREFIX}:${QUEUE_VERIFY}:wait`);
    expect(trigger.metadata.listName).toBe('gitops-gate:verify:wait');
    expect(Number(trigger.metadata.listLength)).toBeGreaterThan(0);
  });

  it('is the only autoscaler of the verifier', () => {
    expect(autoscalersOf(docs(), 'gitops-gate-verifier').map((a) => a.kind)).toEqual(['ScaledObject']);
  });
});

describe('KEDA Redis connection', () => {
  it('dev: reads the in-namespace Redis Service', () => {
    const docs = renderOverlay('dev');
    const { address } = one(docs, 'ScaledObject', 'gitops-gate-verifier').spec.triggers[0].metadata;
    const svc = one(docs, 'Service', 'redis');
    expect(address).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:${svc.spec.ports[0].port}`);
    expect(configOf(docs).REDIS_URL).toBe(`redis://${address}`);
  });

  it('production: takes address and password from the gitops-gate-redis Secret, over TLS', () => {
    const docs = renderOverlay('production');
    const trigger = one(docs, 'ScaledObject', 'gitops-gate-verifier').spec.triggers[0];
    expect(trigger.metadata.address).toBeUndefined();
    expect(trigger.metadata.enableTLS).toBe('true');
    const auth = one(docs, 'TriggerAuthentication', trigger.authenticationRef.name);
    expect(auth.spec.secretTargetRef).toEqual([
      { parameter: 'address', name: 'gitops-gate-redis', key: 'address' },
      { parameter: 'password', name: 'gitops-gate-redis', key: 'password' },
    ]);
  });
});

describe('optional HPA for the verifier (deploy/optional/hpa)', () => {
  it.each(OVERLAYS)('replaces the ScaledObject with an HPA on gitops_gate_queue_waiting{queue="verify"} (%s)', (overlay) => {
    const docs = renderWithComponents(overlay, ['hpa']);
    expect(find(docs, 'ScaledObject')).toEqual([]);
    const [hpa] = autoscalersOf(docs, 'gitops-gate-verifier');
    expect(autoscalersOf(docs, 'gitops-gate-verifier')).toHaveLength(1);
    expect(hpa!.kind).toBe('HorizontalPodAutoscaler');
    expect(hpa!.apiVersion).toBe('autoscaling/v2');
    expect(hpa!.spec).toMatchObject({ minReplicas: 1, maxReplicas: 10 });
    expect(hpa!.spec.metrics).toEqual([
      {
        type: 'External',
        external: {
          metric: { name: 'gitops_gate_queue_waiting', selector: { matchLabels: { queue: 'verify' } } },
          target: { type: 'AverageValue', averageValue: '4' },
        },
      },
    ]);
  });
});

describe('receiver HPA', () => {
  it.each(OVERLAYS)('scales the receiver on CPU, at least 2 replicas (%s)', (overlay) => {
    const docs = renderOverlay(overlay);
    const scalers = autoscalersOf(docs, 'gitops-gate-receiver');
    expect(scalers).toHaveLength(1);
    const hpa = scalers[0]!;
    expect(hpa.kind).toBe('HorizontalPodAutoscaler');
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
    ]);
    expect(autoscalersOf(docs, 'gitops-gate-gate')).toEqual([]);
  });
});

describe('against a real Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('the list KEDA watches is the LIST where BullMQ keeps waiting verify jobs', async () => {
    const docs = renderOverlay('dev');
    const listName: string = one(docs, 'ScaledObject', 'gitops-gate-verifier').spec.triggers[0].metadata.listName;
    const connection = createRedisConnection(redis.url, 'worker');
    const queue = createVerifyQueue(connection, configOf(docs).QUEUE_PREFIX);
    const probe = new Redis(redis.url);
    try {
      for (let i = 0; i < 3; i++) await queue.add('verify', { n: i });
      expect(await probe.type(listName)).toBe('list');
      expect(await probe.llen(listName)).toBe(3);
      expect(await queue.getWaitingCount()).toBe(3);
    } finally {
      await queue.close();
      connection.disconnect();
      probe.disconnect();
    }
  });

  // redis-server exits on any directive it does not understand, so answering at all proves the file parses.
  it('the dev Redis configuration is accepted by redis-server and means what it says', async () => {
    const conf: string = one(renderOverlay('dev'), 'ConfigMap', 'redis-config').data['redis.conf'];
    expect(conf).toMatch(/^dir \/data$/m);
    const dir = mkdtempSync(join(tmpdir(), 'gg-redis-conf-'));
    const port = await freePort();
    // The pod's data dir is a volume at /data; here a temp dir, and loopback only.
    writeFileSync(join(dir, 'redis.conf'), conf.replace(/^dir \/data$/m, `dir ${dir}`));
    const proc = spawn('redis-server', [join(dir, 'redis.conf'), '--port', String(port), '--bind', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      let up = false;
      for (let i = 0; i < 200 && !up && proc.exitCode === null; i++) {
        up = await client.connect().then(
          () => true,
          async () => {
            client.disconnect();
            await sleep(25);
            return false;
          },
        );
      }
      expect(up, output).toBe(true);
      const get = async (k: string) => ((await client.config('GET', k)))[1];
      expect(await get('appendonly')).toBe('yes');
      expect(await get('appendfsync')).toBe('everysec');
      expect(await get('maxmemory-policy')).toBe('noeviction');
      expect(Number(await get('maxmemory'))).toBeGreaterThan(0);
    } finally {
      client.disconnect();
      proc.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
