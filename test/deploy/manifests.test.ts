/**
 * Every overlay, rendered with the real `kubectl kustomize`: schema-valid objects, hardened pods, probes, volumes
 * and configuration that the services' own config loader accepts.
 */
import { CONFIG_VARIABLES, loadConfig } from '@gitops-gate/config';
import { describe, expect, it } from 'vitest';
import {
  deploymentName,
  find,
  NAMESPACE,
  one,
  OVERLAYS,
  podTemplates,
  renderOverlay,
  renderWithComponents,
  SERVICES,
  type K8sObject,
  type Overlay,
} from './lib/render.js';
import { CLUSTER_SCOPED, isBuiltIn, schemaErrors, unknownFields } from './lib/schema.js';

type Container = K8sObject['spec'];

const containersOf = (template: K8sObject['spec']): Container[] => [
  ...(template.spec.initContainers ?? []),
  ...template.spec.containers,
];

/** The container env a service sees: its ConfigMap(s) via envFrom, then `env` (which wins). */
function envOf(docs: K8sObject[], container: Container): Record<string, { value?: string; secret?: string }> {
  const env: Record<string, { value?: string; secret?: string }> = {};
  for (const from of container.envFrom ?? []) {
    const cm = one(docs, 'ConfigMap', from.configMapRef.name);
    for (const [k, v] of Object.entries(cm.data ?? {})) env[k] = { value: String(v) };
  }
  for (const e of container.env ?? []) {
    env[e.name] = e.valueFrom?.secretKeyRef ? { secret: `${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}` } : { value: e.value };
  }
  return env;
}

describe.each(OVERLAYS)('overlay %s', (overlay: Overlay) => {
  const docs = () => renderOverlay(overlay);

  it('renders', () => {
    expect(docs().length).toBeGreaterThan(20);
  });

  it('has only objects that validate against the Kubernetes (and KEDA) schemas', async () => {
    const problems: string[] = [];
    for (const d of docs()) {
      for (const e of await schemaErrors(d)) problems.push(`${d.kind}/${d.metadata.name}: ${e}`);
      if (isBuiltIn(d)) for (const e of unknownFields(d)) problems.push(`${d.kind}/${d.metadata.name}: ${e}`);
    }
    expect(problems).toEqual([]);
  });

  it('puts namespaced objects in gitops-gate and leaves cluster-scoped ones without a namespace', () => {
    for (const d of docs()) {
      if (CLUSTER_SCOPED.has(d.kind)) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBeUndefined();
      else expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe(NAMESPACE);
    }
    expect(one(docs(), 'Namespace', NAMESPACE).metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('has unique object names per kind and namespace', () => {
    const ids = docs().map((d) => `${d.apiVersion}/${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('hardens every container: non-root, read-only root, no capabilities, RuntimeDefault seccomp', () => {
    const templates = podTemplates(docs());
    expect(templates.length).toBeGreaterThanOrEqual(3);
    for (const { owner, template } of templates) {
      const pod = template.spec.securityContext ?? {};
      for (const c of containersOf(template)) {
        const sc = c.securityContext ?? {};
        const where = `${owner.kind}/${owner.metadata.name}/${c.name}`;
        expect(sc.runAsNonRoot ?? pod.runAsNonRoot, where).toBe(true);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.capabilities?.drop, where).toEqual(['ALL']);
        expect(sc.capabilities?.add ?? [], where).toEqual([]);
        expect((sc.seccompProfile ?? pod.seccompProfile)?.type, where).toBe('RuntimeDefault');
        expect(sc.privileged ?? false, where).toBe(false);
        expect(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, where).toBeTruthy();
        expect(c.livenessProbe && c.readinessProbe, where).toBeTruthy();
      }
    }
  });

  it('runs all three services from one image with their own entry point', () => {
    const images = new Set<string>();
    for (const s of SERVICES) {
      const d = one(docs(), 'Deployment', deploymentName(s));
      const [c] = d.spec.template.spec.containers;
      expect(d.spec.template.spec.containers).toHaveLength(1);
      images.add(c.image);
      expect([...c.command, ...c.args]).toEqual(['node', `services/${s}/dist/main.js`]);
    }
    expect(images.size).toBe(1);
  });

  it('probes /healthz for liveness and /readyz for readiness where the service has it', () => {
    const probes = (s: string) => one(docs(), 'Deployment', deploymentName(s as never)).spec.template.spec.containers[0];
    const ports: Record<string, number> = { receiver: 8080, verifier: 9090, gate: 8081 };
    for (const s of SERVICES) {
      const c = probes(s);
      const port = c.ports.find((p: { name: string }) => p.name === c.livenessProbe.httpGet.port);
      expect(port?.containerPort, s).toBe(ports[s]);
      expect(c.livenessProbe.httpGet.path, s).toBe('/healthz');
      expect(c.readinessProbe.httpGet.path, s).toBe(s === 'receiver' ? '/readyz' : '/healthz');
    }
  });

  it('gives every service an emptyDir for GIT_CACHE_DIR and /tmp', () => {
    for (const s of SERVICES) {
      const d = one(docs(), 'Deployment', deploymentName(s));
      const spec = d.spec.template.spec;
      const c = spec.containers[0];
      const gitCacheDir = envOf(docs(), c).GIT_CACHE_DIR?.value;
      expect(gitCacheDir, s).toBeTruthy();
      for (const path of [gitCacheDir, '/tmp']) {
        const mount = c.volumeMounts.find((m: { mountPath: string }) => path === m.mountPath || path!.startsWith(`${m.mountPath}/`));
        expect(mount, `${s} ${path}`).toBeDefined();
        const volume = spec.volumes.find((v: { name: string }) => v.name === mount.name);
        expect(volume.emptyDir, `${s} ${path}`).toBeDefined();
        expect(volume.emptyDir.sizeLimit, `${s} ${path}`).toBeTruthy();
      }
    }
  });

  it('sets replicas and a grace period long enough for a verifier to finish its job', () => {
    const gate = one(docs(), 'Deployment', 'gitops-gate-gate');
    expect(gate.spec.replicas).toBe(2);
    const receiverHpa = one(docs(), 'HorizontalPodAutoscaler', 'gitops-gate-receiver');
    expect(receiverHpa.spec.minReplicas).toBe(2);
    // Autoscaled Deployments leave replicas to the autoscaler (a re-apply would otherwise reset it).
    expect(one(docs(), 'Deployment', 'gitops-gate-receiver').spec.replicas).toBeUndefined();
    expect(one(docs(), 'Deployment', 'gitops-gate-verifier').spec.replicas).toBeUndefined();
    const verifier = one(docs(), 'Deployment', 'gitops-gate-verifier').spec.template.spec;
    expect(verifier.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(300);
    for (const s of SERVICES) {
      const t = one(docs(), 'Deployment', deploymentName(s)).spec.template.spec.terminationGracePeriodSeconds;
      expect(t, s).toBeGreaterThanOrEqual(30);
    }
  });

  it('configures every service with variables that shared/adapters/config knows and accepts', () => {
    const known = new Set([...CONFIG_VARIABLES, 'HOME']);
    for (const s of SERVICES) {
      const c = one(docs(), 'Deployment', deploymentName(s)).spec.template.spec.containers[0];
      const env = envOf(docs(), c);
      for (const name of Object.keys(env)) expect(known.has(name), `${s}: unknown variable ${name}`).toBe(true);
      // Redis must be configured explicitly (the built-in default is 127.0.0.1).
      expect(env.REDIS_URL, `${s} REDIS_URL`).toBeDefined();
      // Resolve secrets to placeholders and files to nothing, then let the real loader judge the rest.
      const plain: Record<string, string> = {};
      for (const [k, v] of Object.entries(env)) {
        if (k.endsWith('_FILE')) continue;
        plain[k] = v.value ?? (k === 'REDIS_URL' ? 'rediss://:secret@redis.example.com:6380/0' : 'secret');
      }
      const config = loadConfig(plain);
      expect(config.QUEUE_PREFIX).toBe('gitops-gate');
    }
  });

  it('never puts a secret into the ConfigMap', () => {
    const secretish = ['WEBHOOK_SECRETS', 'GIT_HTTP_TOKEN'];
    for (const cm of find(docs(), 'ConfigMap')) {
      for (const k of secretish) expect(cm.data?.[k], `${cm.metadata.name}.${k}`).toBeUndefined();
      expect(String(cm.data?.REDIS_URL ?? ''), cm.metadata.name).not.toMatch(/:\/\/[^/@]*:[^/@]+@/);
    }
  });

  it('mounts the webhook secrets as a file (WEBHOOK_SECRETS_FILE) and takes GIT_HTTP_TOKEN from a Secret', () => {
    const receiver = one(docs(), 'Deployment', 'gitops-gate-receiver').spec.template.spec;
    const c = receiver.containers[0];
    const file = envOf(docs(), c).WEBHOOK_SECRETS_FILE?.value;
    const mount = c.volumeMounts.find((m: { mountPath: string }) => file?.startsWith(`${m.mountPath}/`));
    expect(mount?.readOnly).toBe(true);
    const volume = receiver.volumes.find((v: { name: string }) => v.name === mount.name);
    expect(volume.secret.secretName).toMatch(/^gitops-gate-webhook/);
    expect(volume.secret.items).toEqual([{ key: 'secrets', path: file!.slice(mount.mountPath.length + 1) }]);
    for (const s of ['verifier', 'gate'] as const) {
      const env = envOf(docs(), one(docs(), 'Deployment', deploymentName(s)).spec.template.spec.containers[0]);
      expect(env.GIT_HTTP_TOKEN, s).toEqual({ secret: 'gitops-gate-git/token' });
    }
  });

  it('exposes only the receiver, and only its webhook path', () => {
    const services = find(docs(), 'Service').filter((s) => s.metadata.name !== 'redis');
    expect(services.map((s) => s.metadata.name)).toEqual(['gitops-gate-receiver']);
    expect(services[0]!.spec.selector['app.kubernetes.io/component']).toBe('receiver');
    const ingresses = find(docs(), 'Ingress');
    expect(ingresses).toHaveLength(1);
    const paths = ingresses[0]!.spec.rules.flatMap((r: { http: { paths: unknown[] } }) => r.http.paths);
    expect(paths).toEqual([
      { path: '/webhooks/github', pathType: 'Exact', backend: { service: { name: 'gitops-gate-receiver', port: { name: 'http' } } } },
    ]);
  });
});

describe('overlay differences', () => {
  it('never runs :latest (or untagged) images in production', () => {
    const docs = renderOverlay('production');
    const images = podTemplates(docs).flatMap(({ template }) => containersOf(template).map((c) => c.image as string));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      const digest = /@sha256:[0-9a-f]{64}$/.test(image);
      const tag = /:([^/:@]+)$/.exec(image)?.[1];
      expect(digest || (tag !== undefined && tag !== 'latest'), image).toBe(true);
      expect(image, image).not.toMatch(/^gitops-gate(:|$)/); // a registry, not the local dev name
    }
  });

  it('ships Redis only in dev, with AOF and noeviction', () => {
    expect(find(renderOverlay('production'), 'StatefulSet')).toEqual([]);
    const dev = renderOverlay('dev');
    const redis = one(dev, 'StatefulSet', 'redis');
    expect(redis.spec.replicas).toBe(1);
    const conf: string = one(dev, 'ConfigMap', 'redis-config').data['redis.conf'];
    const settings = Object.fromEntries(conf.split('\n').map((l) => l.trim().split(/\s+/)).filter((p) => p[0]).map(([k, ...v]) => [k, v.join(' ')]));
    expect(settings).toMatchObject({ appendonly: 'yes', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' });
    const c = redis.spec.template.spec.containers[0];
    expect(c.command).toEqual(['redis-server', '/etc/redis/redis.conf']);
    expect(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toContain('/data');
    expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    // The services point at it.
    const cm = find(dev, 'ConfigMap').find((m) => m.metadata.name.startsWith('gitops-gate-config'))!;
    expect(cm.data.REDIS_URL).toBe('redis://redis.gitops-gate.svc.cluster.local:6379');
  });

  it('takes REDIS_URL from a Secret in production', () => {
    const docs = renderOverlay('production');
    for (const s of SERVICES) {
      const env = envOf(docs, one(docs, 'Deployment', deploymentName(s)).spec.template.spec.containers[0]);
      expect(env.REDIS_URL, s).toEqual({ secret: 'gitops-gate-redis/url' });
    }
    // and production creates no Secrets of its own: they are made out of band (deploy/README.md)
    expect(find(docs, 'Secret')).toEqual([]);
  });

  it('terminates TLS at the production Ingress', () => {
    const ing = find(renderOverlay('production'), 'Ingress')[0]!;
    expect(ing.spec.tls?.[0]?.hosts).toEqual([ing.spec.rules[0].host]);
  });

  it('validates the optional components against the schemas too', async () => {
    for (const combo of [['hpa'], ['kyverno'], ['hpa', 'kyverno'], ['audit-signing']]) {
      for (const overlay of OVERLAYS) {
        const docs = renderWithComponents(overlay, combo);
        for (const d of docs.filter(isBuiltIn)) {
          expect(await schemaErrors(d), `${combo.join('+')} ${d.kind}/${d.metadata.name}`).toEqual([]);
          expect(unknownFields(d), `${combo.join('+')} ${d.kind}/${d.metadata.name}`).toEqual([]);
        }
      }
    }
  });
});
