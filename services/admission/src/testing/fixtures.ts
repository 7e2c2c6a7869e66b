/** Real-looking manifests and policy objects for the admission tests and bench (`@gitops-gate/admission/testing`). */
import type { ImageVerdictJob } from '@gitops-gate/contracts';

export const IMAGE = 'ghcr.io/org/shop';
export const REPO = 'https://github.com/org/shop';
export const PINNED = 'a'.repeat(40);
export const UNPINNED = 'b'.repeat(40);
export const D_OK = `sha256:${'1'.repeat(64)}`;
export const D_FAIL = `sha256:${'2'.repeat(64)}`;
export const D_UNKNOWN = `sha256:${'3'.repeat(64)}`;
export const D_UNPINNED = `sha256:${'4'.repeat(64)}`;

export function gatePolicy(opts: {
  namespace: string;
  name?: string;
  mode?: 'Enforce' | 'Audit';
  generation?: number;
  requirePinned?: boolean;
}): Record<string, unknown> {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: {
      name: opts.name ?? 'shop',
      namespace: opts.namespace,
      uid: `uid-${opts.namespace}-${opts.name ?? 'shop'}`,
      generation: opts.generation ?? 1,
      ...(opts.requirePinned ? { annotations: { 'gitops-gate.io/admission-require-pinned-commit': 'true' } } : {}),
    },
    spec: {
      mode: opts.mode ?? 'Enforce',
      repository: REPO,
      branches: ['main'],
      commits: {
        ssh: { allowedSigners: 'alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl' },
      },
      images: [
        {
          repository: IMAGE,
          keyless: [
            {
              identity: 'https://github.com/org/shop/.github/workflows/release.yml@refs/heads/main',
              issuer: 'https://token.actions.githubusercontent.com',
            },
          ],
        },
      ],
    },
  };
}

/** The image verdict a verifier sends the gate for one digest under one GatePolicy. */
export function imageVerdict(opts: {
  namespace: string;
  digest: string;
  ok: boolean;
  sourceCommit?: string;
  generation?: number;
  mode?: 'Enforce' | 'Audit';
}): ImageVerdictJob {
  return {
    v: 1,
    kind: 'image-verdict',
    deliveryId: `d-${opts.digest.slice(7, 15)}-${opts.namespace}`,
    repoUrl: REPO,
    image: IMAGE,
    digest: opts.digest,
    ok: opts.ok,
    code: opts.ok ? 'IMAGE_VERIFIED' : 'IMAGE_SIGNATURE_INVALID',
    reason: opts.ok ? undefined : 'no signature from the release workflow',
    sourceCommit: opts.sourceCommit,
    policies: [
      {
        name: `${opts.namespace}/shop`,
        scope: 'Namespaced',
        namespace: opts.namespace,
        uid: `uid-${opts.namespace}-shop`,
        generation: opts.generation ?? 1,
        mode: opts.mode ?? 'Enforce',
        selector: {},
        ok: opts.ok,
        code: opts.ok ? 'IMAGE_VERIFIED' : 'IMAGE_SIGNATURE_INVALID',
      },
    ],
    verifiedAt: new Date().toISOString(),
    trace: undefined,
  };
}

export function pod(
  namespace: string,
  images: string[],
  opts: { init?: string[]; labels?: Record<string, string> } = {},
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace, labels: { app: 'web', ...opts.labels } },
    spec: {
      ...(opts.init ? { initContainers: opts.init.map((image, i) => ({ name: `init-${i}`, image })) } : {}),
      containers: images.map((image, i) => ({ name: `c${i}`, image, ports: [{ containerPort: 8080 }] })),
    },
  };
}

export function deployment(namespace: string, image: string): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image }] } },
    },
  };
}

const GVK: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: '', version: 'v1', resource: 'pods' },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments' },
  CronJob: { group: 'batch', version: 'v1', resource: 'cronjobs' },
};

/** The AdmissionReview a kube-apiserver sends for creating `obj`. */
export function review(obj: Record<string, unknown>, uid = 'e911857d-c318-11e8-bbad-025000000001'): Record<string, unknown> {
  const kind = String(obj.kind);
  const g = GVK[kind] ?? { group: 'apps', version: 'v1', resource: `${kind.toLowerCase()}s` };
  const meta = obj.metadata as { name: string; namespace: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: g.group, version: g.version, kind },
      resource: { group: g.group, version: g.version, resource: g.resource },
      requestKind: { group: g.group, version: g.version, kind },
      requestResource: { group: g.group, version: g.version, resource: g.resource },
      name: meta.name,
      namespace: meta.namespace,
      operation: 'CREATE',
      userInfo: { username: 'alice', groups: ['system:authenticated'] },
      object: obj,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
