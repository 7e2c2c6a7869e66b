import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@gitops-gate/config';
import { FINAL_INDEX_TTL_SECONDS } from '@gitops-gate/gate-core';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { auditIndexSeconds, auditTrimmerFromConfig, createGateAudit } from './gate-audit.js';
import { capturingLogger } from './test-logs.js';

let server: TestRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.close();
});

describe('createGateAudit', () => {
  it('without a key: warns that checkpoints are unsigned, and shows no audit key', () => {
    const { logger, lines } = capturingLogger();
    const g = createGateAudit(loadConfig({ WEBHOOK_SECRETS: 's', REDIS_URL: server.url }), redis, logger);
    expect(g.signing).toBeUndefined();
    expect(g.auditKey).toBeUndefined();
    expect(lines.some((l) => l.msg.startsWith('audit checkpoints unsigned'))).toBe(true);
  });

  it('a key file that cannot be read stops the gate (never runs unsigned by mistake), naming the variable', () => {
    const config = loadConfig({ WEBHOOK_SECRETS: 's', REDIS_URL: server.url, AUDIT_SIGNING_KEY_FILE: '/nonexistent/audit.key' });
    expect(() => createGateAudit(config, redis, capturingLogger().logger)).toThrow(/AUDIT_SIGNING_KEY_FILE/);
  });

  it('the coverage index lives as long as the records, 30 days without an age limit', () => {
    expect(auditIndexSeconds(86_400)).toBe(86_400);
    expect(auditIndexSeconds(0)).toBe(FINAL_INDEX_TTL_SECONDS);
  });
});

describe('auditTrimmerFromConfig', () => {
  it('retention off (no age, no count limit) takes no lease; a record limit turns it on', async () => {
    const off = auditTrimmerFromConfig(
      loadConfig({ WEBHOOK_SECRETS: 's', QUEUE_PREFIX: 'off', AUDIT_RETENTION_SECONDS: '0', AUDIT_RETENTION_RECORDS: '0' }),
      redis,
      undefined,
      capturingLogger().logger,
    );
    await off.runOnce();
    expect(await redis.exists('off:audit-trim-lease')).toBe(0);
    const on = auditTrimmerFromConfig(
      loadConfig({ WEBHOOK_SECRETS: 's', QUEUE_PREFIX: 'on', AUDIT_RETENTION_SECONDS: '0', AUDIT_RETENTION_RECORDS: '100' }),
      redis,
      undefined,
      capturingLogger().logger,
    );
    await on.runOnce();
    expect(await redis.get('on:audit-trim-lease')).toBe(String(process.pid));
  });
});
