import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactRedisUrl, requireWebhookSecrets } from './index.js';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(c.RECEIVER_PORT).toBe(8080);
    expect(c.GATE_NAMESPACES).toEqual([]);
    expect(c.GIT_URL_REWRITES).toEqual({});
    expect(c.webhookSecrets).toEqual([]);
    expect(c.COMPLETED_JOB_RETENTION_SECONDS).toBe(3600);
  });
  it('takes a completed-job retention, refusing 0 and negative values', () => {
    expect(loadConfig({ COMPLETED_JOB_RETENTION_SECONDS: '120' }).COMPLETED_JOB_RETENTION_SECONDS).toBe(120);
    expect(() => loadConfig({ COMPLETED_JOB_RETENTION_SECONDS: '0' })).toThrow(/COMPLETED_JOB_RETENTION_SECONDS/);
  });
  it('parses lists, numbers and JSON', () => {
    const c = loadConfig({
      WEBHOOK_SECRETS: 'a, b,,c',
      RECEIVER_PORT: '9000',
      GATE_NAMESPACES: 'argocd,apps',
      GIT_URL_REWRITES: '{"https://github.com/":"file:///m/"}',
    });
    expect(c.webhookSecrets).toEqual(['a', 'b', 'c']);
    expect(c.RECEIVER_PORT).toBe(9000);
    expect(c.GATE_NAMESPACES).toEqual(['argocd', 'apps']);
    expect(c.GIT_URL_REWRITES).toEqual({ 'https://github.com/': 'file:///m/' });
  });
  it('merges a secrets file after the env secrets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 's'), 'old\n\n new \n');
    expect(loadConfig({ WEBHOOK_SECRETS: 'x', WEBHOOK_SECRETS_FILE: join(dir, 's') }).webhookSecrets).toEqual(['x', 'old', 'new']);
  });
  it('names every bad variable', () => {
    expect(() => loadConfig({ RECEIVER_PORT: 'abc', GIT_URL_REWRITES: '[1]', LOG_LEVEL: 'loud' })).toThrow(
      /RECEIVER_PORT.*GIT_URL_REWRITES|LOG_LEVEL/,
    );
    try {
      loadConfig({ RECEIVER_PORT: 'abc', GIT_URL_REWRITES: '[1]', LOG_LEVEL: 'loud' });
    } catch (e) {
      const m = (e as Error).message;
      expect(m).toContain('RECEIVER_PORT');
      expect(m).toContain('GIT_URL_REWRITES');
      expect(m).toContain('LOG_LEVEL');
    }
    expect(() => loadConfig({ WEBHOOK_SECRETS_FILE: '/nonexistent/x' })).toThrow(/WEBHOOK_SECRETS_FILE/);
    expect(() => loadConfig({ REGISTRY_CREDENTIALS: '{"ghcr.io": {"user": "x"}}' })).toThrow(
      /REGISTRY_CREDENTIALS: must be a JSON object of registry host/,
    );
    expect(
      loadConfig({ REGISTRY_CREDENTIALS: '{"ghcr.io": {"token": "t"}}', REGISTRY_MIRRORS: '{"ghcr.io":"127.0.0.1:5000"}' }),
    ).toMatchObject({
      REGISTRY_CREDENTIALS: { 'ghcr.io': { token: 't' } },
      REGISTRY_MIRRORS: { 'ghcr.io': '127.0.0.1:5000' },
    });
  });
  it('requires a webhook secret for the receiver', () => {
    expect(() => requireWebhookSecrets(loadConfig({}))).toThrow(/at least one webhook secret/);
  });
});

describe('Redis connection settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gg-rcfg-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('defaults: one plain Redis, WAIT auto with a 1 s timeout', () => {
    const { redis } = loadConfig({});
    expect(redis).toEqual({
      url: 'redis://127.0.0.1:6379',
      sentinels: [],
      sentinelMaster: 'mymaster',
      cluster: false,
      waitReplicas: 'auto',
      waitTimeoutMs: 1000,
    });
  });

  it('reads passwords and TLS material from files (trailing newline of Secret mounts dropped)', () => {
    const { redis } = loadConfig({
      REDIS_URL: 'rediss://redis.example:6380',
      REDIS_USERNAME: 'gg',
      REDIS_PASSWORD_FILE: file('pw', 'p4ss\n'),
      REDIS_TLS_CA_FILE: file('ca', 'CA-PEM'),
      REDIS_TLS_CERT_FILE: file('crt', 'CRT'),
      REDIS_TLS_KEY_FILE: file('key', 'KEY'),
      REDIS_SENTINELS: 'a:26379, b:26379',
      REDIS_SENTINEL_MASTER: 'gg',
      REDIS_SENTINEL_PASSWORD_FILE: file('spw', 'sp\n'),
      REDIS_WAIT_REPLICAS: '2',
    });
    expect(redis).toMatchObject({
      username: 'gg',
      password: 'p4ss',
      tls: { ca: 'CA-PEM', cert: 'CRT', key: 'KEY' },
      sentinelPassword: 'sp',
      sentinelMaster: 'gg',
      waitReplicas: 2,
    });
    expect(redis.sentinels).toEqual([
      { host: 'a', port: 26379 },
      { host: 'b', port: 26379 },
    ]);
  });

  it('refuses what would connect insecurely or half-configured, naming the variable (never a secret)', () => {
    const pw = file('pw2', 'hunter2-secret');
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_TLS_CA_FILE: file('ca2', 'x') })).toThrow(/rediss:\/\//);
    expect(() => loadConfig({ REDIS_URL: 'rediss://x', REDIS_TLS_CERT_FILE: file('c2', 'x') })).toThrow(/REDIS_TLS_KEY_FILE/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'nohost' })).toThrow(/REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_SENTINELS: 'a:1' })).toThrow(/choose one/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true' })).toThrow(/hash tag/);
    expect(() => loadConfig({ REDIS_WAIT_REPLICAS: 'some' })).toThrow(/REDIS_WAIT_REPLICAS/);
    const missing = (() => {
      try {
        loadConfig({ REDIS_PASSWORD_FILE: join(dir, 'absent') });
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(missing).toMatch(/REDIS_PASSWORD_FILE: cannot read .*absent: ENOENT/);
    expect(loadConfig({ REDIS_PASSWORD_FILE: pw }).redis.password).toBe('hunter2-secret');
    // The password is kept out of the flat config (which services may log) — only in the redis settings.
    expect(JSON.stringify({ ...loadConfig({ REDIS_PASSWORD_FILE: pw }), redis: undefined })).not.toContain('hunter2');
  });

  it('redactRedisUrl masks a password written into the URL', () => {
    expect(redactRedisUrl('rediss://user:topsecret@h:6380/1')).toBe('rediss://user:***@h:6380/1');
    expect(redactRedisUrl('redis://h:6379')).toBe('redis://h:6379');
  });
});
