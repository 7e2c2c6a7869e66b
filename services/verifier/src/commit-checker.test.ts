/**
 * Policies the gate publishes reach the verifier with their identity: the kind decides the scope, and a GatePolicy
 * without a namespace (which could not be placed in a tenant namespace) is not used.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '@gitops-gate/policy';
import { policySnapshotKey } from '@gitops-gate/contracts';
import { createRedisConnection } from '@gitops-gate/queue';
import { createLogger } from '@gitops-gate/telemetry';
import { createTestRepo, generateSshKey, startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { createRekorClient } from '@gitops-gate/commit-verify';
import { createCommitChecker, createPolicySource, verifyEnvironmentRevision } from './commit-checker.js';

const silent = createLogger('cc-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const spec = {
  repository: 'https://github.com/org/app',
  branches: ['main'],
  commits: { gitsign: [{ identity: 'a@example.com', issuer: 'https://accounts.google.com' }] },
};
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

describe('SSH certificates and revocation reach the verifier through published GatePolicy objects', () => {
  it('a CA-certified commit verifies; once the policy revokes its serial (a new revision), the same commit verifies nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cc-ssh-'));
    const ca = generateSshKey(dir, 'ca');
    const user = generateSshKey(dir, 'user');
    execFileSync('ssh-keygen', [
      '-q',
      '-s',
      ca.privateKeyPath,
      '-I',
      'dev-laptop',
      '-n',
      'dev@example.com',
      '-z',
      '77',
      `${user.privateKeyPath}.pub`,
    ]);
    const repo = createTestRepo(join(dir, 'r'));
    const sha = repo.commit('via certificate', { signWith: { ...user, privateKeyPath: `${user.privateKeyPath}-cert.pub` } });
    const raw = Buffer.from(repo.git('cat-file', 'commit', sha) + '\n');
    execFileSync('sh', [
      '-c',
      `printf 'serial: 77\\n' > ${join(dir, 'spec')} && ssh-keygen -q -k -f ${join(dir, 'krl')} -s ${ca.privateKeyPath}.pub ${join(dir, 'spec')}`,
    ]);
    const ssh = { allowedSigners: `dev@example.com cert-authority ${ca.publicKey}\n` };
    const policy = (revision: string, extra: Record<string, unknown>) =>
      redis.set(
        policySnapshotKey('cc-ssh'),
        JSON.stringify({
          revision,
          policies: [
            {
              apiVersion: 'gitops-gate.io/v1alpha1',
              kind: 'GatePolicy',
              metadata: { name: 'p', namespace: 'team-a', uid: 'u', generation: 1 },
              spec: { repository: '*', branches: ['main'], commits: { ssh: { ...ssh, ...extra } } },
            },
          ],
        }),
      );
    const check = createCommitChecker(createPolicySource(redis, 'cc-ssh', [], silent), {});
    const job = { repoUrl: 'https://github.com/org/app', branch: 'main', sha } as never;
    await policy('r1', {});
    const ok = await check(raw, job);
    expect(ok.verdict.ok ? ok.verdict.evidence.join('\n') : ok.verdict.code).toMatch(/certificate serial 77 key id "dev-laptop"/);
    await policy('r2', { revokedKeys: readFileSync(join(dir, 'krl')).toString('base64') });
    const revoked = await check(raw, job);
    expect(revoked.verdict.ok ? 'OK' : revoked.verdict.code).toBe('SSH_KEY_REVOKED');
  });
});

describe('verifyEnvironmentRevision: what replicas must agree on to share verdicts', () => {
  const trust = createBundleTrust(undefined);
  it('is stable for the same trust root and Rekor', () => {
    const rekor = createRekorClient({ url: 'https://rekor.example' });
    expect(verifyEnvironmentRevision({ trust, rekor }, 'https://rekor.example')).toBe(
      verifyEnvironmentRevision({ trust, rekor: createRekorClient({ url: 'https://rekor.example' }) }, 'https://rekor.example'),
    );
  });
  it('attacker: a replica without Rekor, with another Rekor, or on another trust root never shares a verdict key', () => {
    const rekor = createRekorClient({ url: 'https://rekor.example' });
    const withRekor = verifyEnvironmentRevision({ trust, rekor }, 'https://rekor.example');
    expect(verifyEnvironmentRevision({ trust }, undefined)).not.toBe(withRekor);
    expect(verifyEnvironmentRevision({ trust, rekor }, 'https://rekor.evil.example')).not.toBe(withRekor);
    const other = createBundleTrust({ ...trust.json, tlogs: [] });
    expect(verifyEnvironmentRevision({ trust: other, rekor }, 'https://rekor.example')).not.toBe(withRekor);
  });
});
