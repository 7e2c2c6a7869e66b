/**
 * The sandbox driven by the real kubectl binary through a kubeconfig from writeKubeconfig().
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { argoApplicationKind, createSandboxApiServer, demoApplication, gatePolicyKind, type SandboxApiServer } from './index.js';

const KUBECTL = process.env['KUBECTL'] ?? '/usr/bin/kubectl';
const REPO = 'https://example.invalid/deploy.git';

let dir: string;
let server: SandboxApiServer;
let kubeconfig: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'k8s-sandbox-kubectl-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  const synced = demoApplication({ name: 'guestbook', repoURL: REPO, branch: 'main', path: 'guestbook' }) as Record<string, unknown>;
  synced['status'] = { sync: { status: 'Synced', revision: 'main' }, health: { status: 'Healthy' } };
  server = await createSandboxApiServer({
    seed: [synced, demoApplication({ name: 'billing', namespace: 'team-b', repoURL: REPO, branch: 'release' })],
  });
  kubeconfig = join(dir, `kubeconfig-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  await server.writeKubeconfig(kubeconfig);
});
afterEach(async () => {
  await server.close();
});

function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      // A private discovery cache: ports are reused across runs and a stale cache would describe another server.
      ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args],
      { env: { PATH: process.env['PATH'] ?? '', HOME: dir }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function rows(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));
}

// kubectl is on every machine (and .ci/run installs it when missing): a missing one must fail, not skip.
describe('kubectl against the sandbox', () => {
  it('lists Applications across namespaces with the Argo CD printer columns', async () => {
    const r = await kubectl('get', 'applications', '-A');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(rows(r.stdout)).toEqual([
      ['NAMESPACE', 'NAME', 'SYNC STATUS', 'HEALTH STATUS'],
      ['argocd', 'guestbook', 'Synced', 'Healthy'],
      ['team-b', 'billing'],
    ]);
    const wide = await kubectl('get', 'apps', '-n', 'argocd', '-o', 'wide');
    expect(rows(wide.stdout)).toEqual([
      ['NAME', 'SYNC STATUS', 'HEALTH STATUS', 'REVISION', 'PROJECT'],
      ['guestbook', 'Synced', 'Healthy', 'main', 'default'],
    ]);
    const ns = await kubectl('get', 'namespaces');
    expect(rows(ns.stdout).map((r) => r[0])).toEqual([
      'NAME',
      'argocd',
      'default',
      'kube-node-lease',
      'kube-public',
      'kube-system',
      'team-b',
    ]);
  });

  it('gets one Application as JSON', async () => {
    const r = await kubectl('get', 'app', 'guestbook', '-n', 'argocd', '-o', 'json');
    expect(r.code).toBe(0);
    const app = JSON.parse(r.stdout) as {
      kind: string;
      metadata: { name: string; annotations: Record<string, string> };
      spec: { source: { targetRevision: string } };
    };
    expect(app.kind).toBe('Application');
    expect(app.metadata.name).toBe('guestbook');
    expect(app.metadata.annotations['gitops-gate.io/branch']).toBe('main');
    expect(app.spec.source.targetRevision).toBe('main');
  });

  it('merge-patches with kubectl patch --type merge, and refuses the default strategic merge patch with 415', async () => {
    const sha = '89abcdef0123456789abcdef0123456789abcdef';
    const r = await kubectl(
      'patch',
      'app',
      'guestbook',
      '-n',
      'argocd',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { source: { targetRevision: sha } } }),
    );
    expect(r.stdout.trim()).toBe('application.argoproj.io/guestbook patched');
    const got = await kubectl('get', 'app', 'guestbook', '-n', 'argocd', '-o', 'jsonpath={.spec.source.targetRevision}');
    expect(got.stdout).toBe(sha);

    const smp = await kubectl('patch', 'app', 'guestbook', '-n', 'argocd', '-p', '{"spec":{"project":"other"}}');
    expect(smp.code).not.toBe(0);
    expect(smp.stderr).toContain(
      'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
    );
  });

  it('creates a new Application with kubectl apply -f and updates it with a second apply', async () => {
    const file = join(dir, 'app.json');
    const app = demoApplication({ name: 'applied', repoURL: REPO, branch: 'main' }) as { spec: { source: { targetRevision: string } } };
    await writeFile(file, JSON.stringify(app));
    const first = await kubectl('apply', '-f', file);
    expect(first.stderr).toBe('');
    expect(first.stdout.trim()).toBe('application.argoproj.io/applied created');

    app.spec.source.targetRevision = 'develop';
    await writeFile(file, JSON.stringify(app));
    const second = await kubectl('apply', '-f', file);
    expect(second.stdout.trim()).toBe('application.argoproj.io/applied configured');
    const got = JSON.parse((await kubectl('get', 'app', 'applied', '-n', 'argocd', '-o', 'json')).stdout) as {
      metadata: { annotations: Record<string, string>; generation: number };
      spec: { source: { targetRevision: string } };
    };
    expect(got.spec.source.targetRevision).toBe('develop');
    expect(got.metadata.generation).toBe(2);
    expect(got.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toContain('"develop"');
    // Client-side apply sends a JSON merge patch for a custom resource (strategic merge is not offered).
    expect(server.requests().some((q) => q.method === 'PATCH' && q.path.endsWith('/applications/applied'))).toBe(true);

    const unchanged = await kubectl('apply', '-f', file);
    expect(unchanged.stdout.trim()).toBe('application.argoproj.io/applied unchanged');
  });

  it('creates with kubectl create -f and reports AlreadyExists on a second create', async () => {
    const file = join(dir, 'create.json');
    await writeFile(file, JSON.stringify(demoApplication({ name: 'created', repoURL: REPO, branch: 'main' })));
    expect((await kubectl('create', '-f', file)).stdout.trim()).toBe('application.argoproj.io/created created');
    const again = await kubectl('create', '-f', file);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('Error from server (AlreadyExists)');
    expect(again.stderr).toContain('applications.argoproj.io "created" already exists');
  });

  it('deletes with kubectl delete and then reports NotFound', async () => {
    const del = await kubectl('delete', 'app', 'guestbook', '-n', 'argocd');
    expect(del.stdout.trim()).toBe('application.argoproj.io "guestbook" deleted');
    const get = await kubectl('get', 'app', 'guestbook', '-n', 'argocd');
    expect(get.code).not.toBe(0);
    expect(get.stderr.trim()).toBe('Error from server (NotFound): applications.argoproj.io "guestbook" not found');
  });

  it('shows RBAC-style Forbidden from a deny rule', async () => {
    server.deny({ verb: 'list', resource: 'applications' });
    const r = await kubectl('get', 'applications', '-A');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'applications.argoproj.io is forbidden: User "system:serviceaccount:argocd:gitops-gate" cannot list resource "applications" in API group "argoproj.io" at the cluster scope',
    );
  });

  it('selects by label and field', async () => {
    expect((await kubectl('label', 'app', 'billing', '-n', 'team-b', 'tier=backend')).code).toBe(0);
    const byLabel = await kubectl('get', 'apps', '-A', '-l', 'tier in (backend,frontend)', '-o', 'name');
    expect(byLabel.stdout.trim()).toBe('application.argoproj.io/billing');
    const notLabel = await kubectl('get', 'apps', '-A', '-l', '!tier', '-o', 'name');
    expect(notLabel.stdout.trim()).toBe('application.argoproj.io/guestbook');
    const byField = await kubectl('get', 'apps', '-A', '--field-selector', 'metadata.namespace=team-b', '-o', 'name');
    expect(byField.stdout.trim()).toBe('application.argoproj.io/billing');
  });
  it('sends fieldValidation=Strict on create and apply: a misspelt field is refused, --validate=warn prints the Warning', async () => {
    const file = join(dir, 'typo.json');
    const app = demoApplication({ name: 'typo', repoURL: REPO, branch: 'main' }) as { spec: { source: Record<string, unknown> } };
    app.spec.source['targetRevison'] = 'v1';
    await writeFile(file, JSON.stringify(app));
    for (const verb of ['create', 'apply']) {
      const r = await kubectl(verb, '-f', file);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('Error from server (BadRequest)');
      expect(r.stderr).toContain('strict decoding error: unknown field "spec.source.targetRevison"');
    }
    const warned = await kubectl('create', '--validate=warn', '-f', file);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain('Warning: unknown field "spec.source.targetRevison"');
    const got = JSON.parse((await kubectl('get', 'app', 'typo', '-n', 'argocd', '-o', 'json')).stdout) as {
      spec: { source: Record<string, unknown> };
    };
    expect(got.spec.source['targetRevison']).toBeUndefined();
    expect(
      server
        .requests()
        .filter((q) => q.method === 'POST')
        .map((q) => q.query),
    ).toEqual(expect.arrayContaining([expect.stringContaining('fieldValidation=Strict'), expect.stringContaining('fieldValidation=Warn')]));
  });
  it('applies the example GatePolicy (strict, as kubectl sends it), prints Mode and Ready, and refuses a broken copy', async () => {
    await server.close();
    server = await createSandboxApiServer({ kinds: [argoApplicationKind, gatePolicyKind] });
    await server.writeKubeconfig(kubeconfig);
    const example = fileURLToPath(new URL('../../../../deploy/examples/gatepolicy.yaml', import.meta.url));
    const applied = await kubectl('apply', '-f', example);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe('gatepolicy.gitops-gate.io/shop created');
    const got = JSON.parse((await kubectl('get', 'gp', 'shop', '-n', 'argocd', '-o', 'json')).stdout) as {
      spec: { images: Array<{ requireProvenance: boolean }>; commits: { gpg: Array<{ publicKey: string; revoked: boolean }> } };
    };
    expect(got.spec.commits.gpg[0]).toMatchObject({ revoked: false, publicKey: expect.stringContaining('BEGIN PGP PUBLIC KEY BLOCK') });
    const status = await fetch(`${server.url}/apis/gitops-gate.io/v1alpha1/namespaces/argocd/gatepolicies/shop/status`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/merge-patch+json' },
      body: JSON.stringify({
        status: {
          conditions: [
            { type: 'Invalid', status: 'False' },
            { type: 'Ready', status: 'True' },
          ],
        },
      }),
    });
    expect(status.status).toBe(200);
    expect(rows((await kubectl('get', 'gatepolicies', '-n', 'argocd')).stdout).map((r) => r.slice(0, 3))).toEqual([
      ['NAME', 'MODE', 'READY'],
      ['shop', 'Enforce', 'True'],
    ]);
    const broken = join(dir, 'broken-policy.yaml');
    await writeFile(
      broken,
      (await readFile(example, 'utf8')).replace('name: shop', 'name: broken').replace('requireProvenance: true', 'requireProvenence: true'),
    );
    const refused = await kubectl('apply', '-f', broken);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('strict decoding error: unknown field "spec.images[0].requireProvenence"');
  });
});
