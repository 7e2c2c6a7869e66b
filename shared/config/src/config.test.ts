import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, requireWebhookSecrets } from './index.js';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(c.RECEIVER_PORT).toBe(8080);
    expect(c.GATE_NAMESPACES).toEqual([]);
    expect(c.GIT_URL_REWRITES).toEqual({});
    expect(c.webhookSecrets).toEqual([]);
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
    expect(() => loadConfig({ REGISTRY_CREDENTIALS: '{"ghcr.io": {"user": "x"}}' })).toThrow(/REGISTRY_CREDENTIALS: must be a JSON object of registry host/);
    expect(loadConfig({ REGISTRY_CREDENTIALS: '{"ghcr.io": {"token": "t"}}', REGISTRY_MIRRORS: '{"ghcr.io":"127.0.0.1:5000"}' })).toMatchObject({
      REGISTRY_CREDENTIALS: { 'ghcr.io': { token: 't' } },
      REGISTRY_MIRRORS: { 'ghcr.io': '127.0.0.1:5000' },
    });
  });
  it('requires a webhook secret for the receiver', () => {
    expect(() => requireWebhookSecrets(loadConfig({}))).toThrow(/at least one webhook secret/);
  });
});
