/**
 * The optional github-app component: receiver, verifier and gate get the App's id and key from the Secret
 * gitops-gate-github-app; the documented Secret manifest has the keys the component reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '@gitops-gate/config';
import { DEPLOY, one, renderOverlay, renderWithComponents } from './lib/render.js';
import { isBuiltIn, schemaErrors, unknownFields } from './lib/schema.js';

describe('optional/github-app', () => {
  it.each(['dev', 'production'] as const)('mounts the App key read-only and sets GITHUB_APP_* in every service (%s)', async (overlay) => {
    const docs = renderWithComponents(overlay, ['github-app']);
    for (const name of ['gitops-gate-receiver', 'gitops-gate-verifier', 'gitops-gate-gate']) {
      const spec = one(docs, 'Deployment', name).spec.template.spec;
      const c = spec.containers[0];
      expect(spec.volumes.find((v: { name: string }) => v.name === 'github-app').secret).toMatchObject({ secretName: 'gitops-gate-github-app', items: [{ key: 'private-key', path: 'private-key' }] });
      expect(c.volumeMounts.find((m: { name: string }) => m.name === 'github-app')).toMatchObject({ readOnly: true, mountPath: '/etc/gitops-gate/github-app' });
      expect(c.env).toContainEqual({ name: 'GITHUB_APP_PRIVATE_KEY_FILE', value: '/etc/gitops-gate/github-app/private-key' });
      expect(c.env).toContainEqual({ name: 'GITHUB_APP_ID', valueFrom: { secretKeyRef: { name: 'gitops-gate-github-app', key: 'app-id' } } });
    }
    for (const v of ['GITHUB_APP_ID', 'GITHUB_APP_PRIVATE_KEY_FILE', 'GITHUB_APP_INSTALLATION_ID']) expect(CONFIG_VARIABLES).toContain(v);
    for (const d of docs.filter(isBuiltIn)) {
      expect(await schemaErrors(d), `${d.kind}/${d.metadata.name}`).toEqual([]);
      expect(unknownFields(d), `${d.kind}/${d.metadata.name}`).toEqual([]);
    }
    // The receiver may now reach the GitHub API (HTTPS); nothing else changes without the component.
    expect(one(docs, 'NetworkPolicy', 'receiver-egress-github-api').spec.egress).toEqual([{ ports: [{ protocol: 'TCP', port: 443 }] }]);
    expect(JSON.stringify(renderOverlay(overlay))).not.toContain('gitops-gate-github-app');
  });

  it('the example Secret carries the keys the component reads', () => {
    const secret = load(readFileSync(join(DEPLOY, 'examples/github-app-secret.yaml'), 'utf8')) as { kind: string; metadata: { name: string }; stringData: Record<string, string> };
    expect(secret.kind).toBe('Secret');
    expect(secret.metadata.name).toBe('gitops-gate-github-app');
    expect(Object.keys(secret.stringData).sort()).toEqual(['app-id', 'installation-id', 'private-key']);
  });
});
