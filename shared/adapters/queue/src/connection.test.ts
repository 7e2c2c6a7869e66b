/**
 * The connection factory against real redis-server processes: TLS (server CA, mutual TLS), ACL users with passwords
 * from files, and the replication WAIT. Attacker view: the password must not leak into errors or logs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, redactRedisUrl } from '@gitops-gate/config';
import { createLogger } from '@gitops-gate/telemetry';
import { startRedisNode, type RedisNode } from '@gitops-gate/testing';
import { createRedisConnection } from './connection.js';
import { connectedReplicas, createReplicationWait, ReplicationError } from './replication.js';

const PASSWORD = `pw-${Math.random().toString(36).slice(2)}-secret`;
let dir: string;
let tlsNode: RedisNode;
let mtlsNode: RedisNode;

function pem(name: string, subj: string, signer?: { cert: string; key: string }): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  if (!signer) {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        subj,
      ],
      { stdio: 'ignore' },
    );
  } else {
    const csr = join(dir, `${name}.csr`);
    const ext = join(dir, `${name}.ext`);
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    execFileSync(
      'openssl',
      ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subj],
      { stdio: 'ignore' },
    );
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        signer.cert,
        '-CAkey',
        signer.key,
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        '1',
        '-extfile',
        ext,
      ],
      { stdio: 'ignore' },
    );
  }
  return { cert, key };
}

let ca: { cert: string; key: string };
let client: { cert: string; key: string };
const passwordFile = () => join(dir, 'redis-password');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gg-rtls-'));
  ca = pem('ca', '/CN=gg test CA');
  const server = pem('server', '/CN=127.0.0.1', ca);
  client = pem('client', '/CN=gitops-gate', ca);
  writeFileSync(passwordFile(), `${PASSWORD}\n`);
  // TLS only (plain port 0), an ACL user `gg` and no default user access.
  const tlsArgs = (auth: 'yes' | 'no') => (port: number) => [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    server.cert,
    '--tls-key-file',
    server.key,
    '--tls-ca-cert-file',
    ca.cert,
    '--tls-auth-clients',
    auth,
    '--user',
    'default',
    'off',
    '--user',
    'gg',
    'on',
    `>${PASSWORD}`,
    '~*',
    '&*',
    '+@all',
  ];
  tlsNode = await startRedisNode({ args: tlsArgs('no') });
  mtlsNode = await startRedisNode({ args: tlsArgs('yes') });
}, 60_000);

afterAll(async () => {
  await tlsNode?.stop(true);
  await mtlsNode?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe('createRedisConnection', () => {
  it('rediss:// with the CA file, an ACL user and the password from a file', async () => {
    const config = loadConfig({
      REDIS_URL: `rediss://127.0.0.1:${tlsNode.port}`,
      REDIS_USERNAME: 'gg',
      REDIS_PASSWORD_FILE: passwordFile(),
      REDIS_TLS_CA_FILE: ca.cert,
    });
    const redis = createRedisConnection(config.redis, 'producer', { lazyConnect: true });
    await redis.connect();
    expect(await redis.acl('WHOAMI')).toBe('gg');
    redis.disconnect();
  });

  it('mutual TLS: refused without the client certificate, accepted with it', async () => {
    const url = `rediss://127.0.0.1:${mtlsNode.port}`;
    const base = { REDIS_URL: url, REDIS_USERNAME: 'gg', REDIS_PASSWORD_FILE: passwordFile(), REDIS_TLS_CA_FILE: ca.cert };
    const without = createRedisConnection(loadConfig(base).redis, 'producer', { lazyConnect: true, retryStrategy: () => null });
    await expect(without.connect().then(() => without.ping())).rejects.toThrow();
    without.disconnect();
    const withCert = createRedisConnection(
      loadConfig({ ...base, REDIS_TLS_CERT_FILE: client.cert, REDIS_TLS_KEY_FILE: client.key }).redis,
      'producer',
      { lazyConnect: true },
    );
    await withCert.connect();
    expect(await withCert.ping()).toBe('PONG');
    withCert.disconnect();
  });

  it('a server certificate from another CA is refused (no silent fallback to unverified TLS)', async () => {
    const other = pem('other-ca', '/CN=other CA');
    const config = loadConfig({
      REDIS_URL: `rediss://127.0.0.1:${tlsNode.port}`,
      REDIS_USERNAME: 'gg',
      REDIS_PASSWORD_FILE: passwordFile(),
      REDIS_TLS_CA_FILE: other.cert,
    });
    const redis = createRedisConnection(config.redis, 'producer', { lazyConnect: true, retryStrategy: () => null });
    await expect(redis.connect().then(() => redis.ping())).rejects.toThrow();
    redis.disconnect();
  });

  it('attacker view: a wrong or right password never appears in errors or logs', async () => {
    writeFileSync(join(dir, 'wrong'), 'not-the-password-xyz\n');
    const lines: string[] = [];
    const logger = createLogger('test', 'debug', { write: (s: string) => void lines.push(s) } as unknown as NodeJS.WritableStream);
    for (const file of [passwordFile(), join(dir, 'wrong')]) {
      const config = loadConfig({
        REDIS_URL: `rediss://127.0.0.1:${tlsNode.port}`,
        REDIS_USERNAME: 'nobody',
        REDIS_PASSWORD_FILE: file,
        REDIS_TLS_CA_FILE: ca.cert,
      });
      const redis = createRedisConnection(config.redis, 'producer', { lazyConnect: true, retryStrategy: () => null });
      const err = await redis
        .connect()
        .then(() => redis.ping())
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(err).toBeInstanceOf(Error);
      logger.error({ err }, 'redis connection failed');
      const text = `${String(err)} ${err?.stack ?? ''} ${JSON.stringify(err)}`;
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain('not-the-password-xyz');
      redis.disconnect();
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(PASSWORD);
    expect(lines.join('\n')).not.toContain('not-the-password-xyz');
    // A password written into REDIS_URL is masked wherever the URL is shown.
    expect(redactRedisUrl(`redis://gg:${PASSWORD}@redis:6379/0`)).toBe('redis://gg:***@redis:6379/0');
  });
});

describe('replication WAIT', () => {
  let master: RedisNode;
  let replica: RedisNode;
  beforeAll(async () => {
    master = await startRedisNode();
    replica = await startRedisNode({ args: () => ['--replicaof', '127.0.0.1', String(master.port)] });
  }, 30_000);
  afterAll(async () => {
    await replica?.stop(true);
    await master?.stop(true);
  });

  it('auto: no wait without replicas, 1 once a replica is seen, and it stays required when the replica dies', async () => {
    const alone = await startRedisNode();
    const solo = createRedisConnection(`redis://127.0.0.1:${alone.port}`, 'worker');
    try {
      const soloWait = createReplicationWait(solo, { replicas: 'auto', timeoutMs: 200, probeMs: 0 });
      await solo.set('k', '1');
      await soloWait.wait();
      expect(await soloWait.required()).toBe(0);
    } finally {
      solo.disconnect();
      await alone.stop(true);
    }

    const redis = createRedisConnection(`redis://127.0.0.1:${master.port}`, 'worker');
    await expect.poll(() => connectedReplicas(redis), { timeout: 10_000 }).toBe(1);
    const wait = createReplicationWait(redis, { replicas: 'auto', timeoutMs: 300, probeMs: 0 });
    await redis.set('k', '2');
    // A replica still in its initial sync is counted but acknowledges nothing yet: WAIT succeeds once it is online.
    await expect
      .poll(
        async () =>
          wait.wait().then(
            () => 'ok',
            () => 'timeout',
          ),
        { timeout: 15_000, interval: 200 },
      )
      .toBe('ok');
    expect(await wait.required()).toBe(1);

    await replica.stop(true);
    await redis.set('k', '3');
    const err = await wait.wait().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ReplicationError);
    expect((err as ReplicationError).code).toBe('REDIS_NOT_REPLICATED');
    await replica.start();
    await expect
      .poll(
        async () =>
          wait.wait().then(
            () => 'ok',
            () => 'timeout',
          ),
        { timeout: 15_000, interval: 200 },
      )
      .toBe('ok');
    redis.disconnect();
  }, 40_000);

  it('sentinel mode requires one replica from the start; an explicit 0 never waits', async () => {
    const redis = createRedisConnection(`redis://127.0.0.1:${master.port}`, 'worker');
    expect(await createReplicationWait(redis, { replicas: 'auto', timeoutMs: 100, sentinel: true }).required()).toBe(1);
    expect(await createReplicationWait(redis, { replicas: 0, timeoutMs: 100, sentinel: true }).required()).toBe(0);
    redis.disconnect();
  });
});
