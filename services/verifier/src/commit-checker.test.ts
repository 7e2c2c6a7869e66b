/**
 * Policies the gate publishes reach the verifier with their identity: the kind decides the scope, and a GatePolicy
 * without a namespace (which could not be placed in a tenant namespace) is not used.
 */
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '@gitops-gate/commit-verify';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createPolicySource } from './commit-checker.js';

const silent = createLogger('cc-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const spec = { repository: 'https://github.com/org/app', branches: ['main'], commits: { gitsign: [{ identity: 'a@example.com', issuer: 'https://accounts.google.com' }] } };
const obj = (kind: string, metadata: Record<string, unknown>) => ({ apiVersion: 'gitops-gate.io/v1alpha1', kind, metadata, spec });

let server: TestRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedisConnection(server.url, 'worker');
});
afterAll(async () => {
  redis.disconnect();
  await server.close();
});

describe('createPolicySource', () => {
  it('compiles published objects with their identity, next to file policies (scope File)', async () => {
    const file = await compilePolicy(obj('GatePolicy', { name: 'ops' }));
    await redis.set(
      policySnapshotKey('cc'),
      JSON.stringify({
        revision: 'r1',
        policies: [
          obj('GatePolicy', { name: 'p', namespace: 'team-a', uid: 'u1', generation: 2 }),
          obj('ClusterGatePolicy', { name: 'c', uid: 'u2', generation: 1 }),
          obj('GatePolicy', { name: 'nowhere', uid: 'u3', generation: 1 }),
        ],
      }),
    );
    const policies = await createPolicySource(redis, 'cc', [file], silent).current();
    expect(policies.map((p) => [p.name, p.scope, p.namespace, p.uid, p.generation])).toEqual([
      ['team-a/p', 'Namespaced', 'team-a', 'u1', 2],
      ['c', 'Cluster', undefined, 'u2', 1],
      ['ops', 'File', undefined, undefined, undefined],
    ]);
  });
});
