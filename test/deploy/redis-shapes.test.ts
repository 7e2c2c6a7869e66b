/**
 * The production shapes of Redis as Kustomize components (deploy/optional/redis-tls, deploy/optional/redis-sentinel)
 * on the production overlay: rendered with the real `kubectl kustomize`, schema-checked, and wired as shared/adapters/config
 * reads them (secrets as mounted files, never as plain env values), KEDA and the NetworkPolicy following along.
 */
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '@gitops-gate/config';
import { deploymentName, find, one, renderWithComponents, SERVICES, type K8sObject } from './lib/render.js';
import { isBuiltIn, schemaErrors, unknownFields } from './lib/schema.js';

type Env = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };

function container(docs: K8sObject[], s: (typeof SERVICES)[number]) {
  return one(docs, 'Deployment', deploymentName(s)).spec.template.spec.containers[0] as { env: Env[]; volumeMounts: { name: string; mountPath: string }[] };
}

describe.each([['redis-tls'], ['redis-sentinel']])('production + %s', (component) => {
  const docs = () => renderWithComponents('production', [component]);

  it('validates against the Kubernetes and KEDA schemas', async () => {
    const problems: string[] = [];
    for (const d of docs()) {
      for (const e of await schemaErrors(d)) problems.push(`${d.kind}/${d.metadata.name}: ${e}`);
      if (isBuiltIn(d)) for (const e of unknownFields(d)) problems.push(`${d.kind}/${d.metadata.name}: ${e}`);
    }
    expect(problems).toEqual([]);
  });

  it('gives every service the Redis settings as known variables, secrets as mounted files only', () => {
    const d = docs();
    for (const s of SERVICES) {
      const c = container(d, s);
      const names = c.env.map((e) => e.name);
      for (const n of names.filter((x) => x.startsWith('REDIS_'))) expect(CONFIG_VARIABLES, n).toContain(n);
      expect(names).toContain('REDIS_PASSWORD_FILE');
      // No password travels as a plain env value.
      for (const e of c.env) if (/PASSWORD(?!_FILE)/.test(e.name)) expect(e.value, e.name).toBeUndefined();
      const file = c.env.find((e) => e.name === 'REDIS_PASSWORD_FILE')!.value!;
      const mount = c.volumeMounts.find((m) => file.startsWith(`${m.mountPath}/`));
      expect(mount?.name, s).toBe('redis-credentials');
      if (component === 'redis-sentinel') {
        expect(names).toEqual(expect.arrayContaining(['REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD_FILE']));
        expect(c.env.find((e) => e.name === 'REDIS_SENTINELS')!.value).toMatch(/^([^:,]+:26379,?)+$/);
      } else {
        expect(names).toEqual(expect.arrayContaining(['REDIS_TLS_CA_FILE', 'REDIS_USERNAME']));
      }
    }
  });

  it('KEDA reads the wait list the same way, and the NetworkPolicy opens the right ports', () => {
    const d = docs();
    const trigger = one(d, 'ScaledObject', 'gitops-gate-verifier').spec.triggers[0];
    const auth = one(d, 'TriggerAuthentication', trigger.authenticationRef.name);
    const params = auth.spec.secretTargetRef.map((r: { parameter: string }) => r.parameter);
    const ports = one(d, 'NetworkPolicy', 'allow-redis-egress').spec.egress[0].ports.map((p: { port: number }) => p.port);
    if (component === 'redis-sentinel') {
      expect(trigger.type).toBe('redis-sentinel');
      expect(trigger.metadata.sentinelMaster).toBe('mymaster');
      expect(params).toEqual(expect.arrayContaining(['password', 'sentinelPassword']));
      expect(ports).toEqual(expect.arrayContaining([6379, 26379]));
    } else {
      expect(trigger.type).toBe('redis');
      expect(trigger.metadata.enableTLS).toBe('true');
      expect(params).toEqual(expect.arrayContaining(['address', 'username', 'password', 'ca']));
      expect(ports).toEqual([6380]);
    }
    expect(find(d, 'Secret')).toEqual([]);
  });
});
