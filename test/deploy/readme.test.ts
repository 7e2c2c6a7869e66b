/**
 * deploy/README.md stays true to the manifests: every Secret (and key) the pods reference is explained, and the
 * numbers it quotes are the rendered ones.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEPLOY, one, podTemplates, renderOverlay } from './lib/render.js';

const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');

describe('deploy/README.md', () => {
  it('gives the install command, the Redis settings and the opt-in annotation', () => {
    expect(readme).toContain('kubectl apply -k deploy/overlays/production');
    for (const s of ['maxmemory-policy` | `noeviction', 'appendonly` | `yes', 'appendfsync` | `everysec']) expect(readme).toContain(s);
    expect(readme).toContain('gitops-gate.io/branch: main');
    expect(readme).toContain('deploy/Dockerfile');
  });

  it('explains how to create every Secret key production pods and KEDA read', () => {
    const docs = renderOverlay('production');
    const refs = new Set<string>();
    for (const { template } of podTemplates(docs)) {
      for (const c of template.spec.containers) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) refs.add(`${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`);
      }
      for (const v of template.spec.volumes ?? []) for (const i of v.secret?.items ?? []) refs.add(`${v.secret.secretName}/${i.key}`);
    }
    for (const r of one(docs, 'TriggerAuthentication', 'gitops-gate-redis').spec.secretTargetRef) refs.add(`${r.name}/${r.key}`);
    expect([...refs].sort()).toEqual([
      'gitops-gate-git/token',
      'gitops-gate-redis/address',
      'gitops-gate-redis/password',
      'gitops-gate-redis/url',
      'gitops-gate-webhook/secrets',
    ]);
    for (const ref of refs) {
      const [name, key] = ref.split('/');
      const cmd = new RegExp(`create secret generic ${name} [^\\n]*(\\\\\\n[^\\n]*)*--from-(literal|file)=${key}=`);
      expect(readme, ref).toMatch(cmd);
    }
  });

  it('quotes the rendered numbers', () => {
    const docs = renderOverlay('production');
    const grace = one(docs, 'Deployment', 'gitops-gate-verifier').spec.template.spec.terminationGracePeriodSeconds;
    expect(readme).toContain(`terminationGracePeriodSeconds: ${grace}`);
    const so = one(docs, 'ScaledObject', 'gitops-gate-verifier');
    expect(readme).toContain(`${so.spec.minReplicaCount}–${so.spec.maxReplicaCount} replicas, one replica per ${so.spec.triggers[0].metadata.listLength} jobs`);
    const hpa = one(docs, 'HorizontalPodAutoscaler', 'gitops-gate-receiver');
    expect(readme).toContain(`${hpa.spec.minReplicas}–${hpa.spec.maxReplicas} replicas`);
    expect(readme).toContain(`${so.spec.triggers[0].metadata.listName}`);
  });
});
