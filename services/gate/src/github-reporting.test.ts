import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@gitops-gate/config';
import { createGitHubReporting } from './github-reporting.js';
import { capturingLogger } from './test-logs.js';

describe('createGitHubReporting', () => {
  it('without a GitHub App or token: reporting off, said once, decisions pass through without touching Redis', async () => {
    const config = loadConfig({ WEBHOOK_SECRETS: 'test-secret' });
    const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
    const { logger, lines } = capturingLogger();
    const r = createGitHubReporting(config, undefined, redis, logger);
    expect(lines.filter((l) => l.msg === 'GitHub reporting off (no GitHub App or token)').map((l) => l.github)).toEqual(['off']);
    const record = {
      id: 'r1',
      time: new Date().toISOString(),
      repo: 'https://github.com/org/app',
      sha: 'a'.repeat(40),
      app: 'argocd/web',
      action: 'pin',
      reason: 'ok',
    };
    await expect(r.reportOutcomes([{ record } as never])).resolves.toBeUndefined();
    await expect(r.close()).resolves.toBeUndefined();
    expect(redis.status).toBe('wait');
    redis.disconnect();
  });
});
