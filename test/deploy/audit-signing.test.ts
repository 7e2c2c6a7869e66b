/**
 * The optional audit-signing component: the gate gets its checkpoint key from a Secret, and the docs say how to make
 * that Secret and where auditors find the public key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '@gitops-gate/config';
import { DEPLOY, one, renderOverlay, renderWithComponents } from './lib/render.js';

const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');

describe('optional/audit-signing', () => {
  it.each(['dev', 'production'] as const)('mounts the Secret gitops-gate-audit-key into the gate only, read-only, and points AUDIT_SIGNING_KEY_FILE at it (%s)', (overlay) => {
    const docs = renderWithComponents(overlay, ['audit-signing']);
    const spec = one(docs, 'Deployment', 'gitops-gate-gate').spec.template.spec;
    const container = spec.containers[0];
    const volume = spec.volumes.find((v: { name: string }) => v.name === 'audit-key');
    expect(volume.secret).toMatchObject({ secretName: 'gitops-gate-audit-key', items: [{ key: 'key', path: 'key' }] });
    expect(volume.secret.optional).toBeUndefined(); // asked-for signatures are never silently skipped
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'audit-key');
    expect(mount).toMatchObject({ readOnly: true });
    expect(container.env).toContainEqual({ name: 'AUDIT_SIGNING_KEY_FILE', value: `${mount.mountPath}/key` });
    expect(CONFIG_VARIABLES).toContain('AUDIT_SIGNING_KEY_FILE');
    // Nobody else sees the key.
    for (const name of ['gitops-gate-receiver', 'gitops-gate-verifier']) {
      expect(JSON.stringify(one(docs, 'Deployment', name))).not.toContain('gitops-gate-audit-key');
    }
    // Without the component nothing changes.
    expect(JSON.stringify(renderOverlay(overlay))).not.toContain('gitops-gate-audit-key');
  });

  it('is documented: how to make the key and the Secret, and how to check the trail with the public key', () => {
    expect(readme).toContain('openssl genpkey -algorithm ed25519 -out audit-key.pem');
    expect(readme).toContain('kubectl -n gitops-gate create secret generic gitops-gate-audit-key --from-file=key=audit-key.pem');
    expect(readme).toContain('gitops-gate audit --verify-chain --public-key audit-key.pub');
    expect(readme).toContain('../../optional/audit-signing');
  });
});
