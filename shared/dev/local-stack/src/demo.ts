/**
 * The demo that `npm start` and `npm run demo` run: a real git repository, an SSH signing key in allowed_signers, a
 * signed push delivered as a signed GitHub webhook — and the Argo CD Application pinned to that commit; then an
 * unsigned push, refused.
 */
import { StackError } from './redis.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { demoApplication } from '@gitops-gate/k8s-sandbox';
import { createTestRepo, deliveryHeaders, generateSshKey, pushPayload, type SshSigningKey, type TestRepo } from '@gitops-gate/testing';
import type { Stack } from './stack.js';

export const DEMO_REPO_URL = 'https://github.com/demo/app.git';
export const DEMO_APP = { name: 'demo-app', namespace: 'argocd' };
export const DEMO_SIGNER = 'dev@example.com';

export interface DemoFixture {
  repo: TestRepo;
  key: SshSigningKey;
  allowedSignersFile: string;
  urlRewrites: Record<string, string>;
  application: object;
  /** A GatePolicy trusting the demo key for main of the demo repository, for every Application that follows it. */
  policy: object;
}

/** A fresh repository with a bare remote, a signing key and an allowed_signers file naming it, under workDir/demo. */
export function createDemoFixture(workDir: string): DemoFixture {
  const dir = join(workDir, 'demo');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const key = generateSshKey(dir, 'demo_signing_key');
  const allowedSignersFile = join(dir, 'allowed_signers');
  writeFileSync(allowedSignersFile, `${key.allowedSignersLine(DEMO_SIGNER)}\n`);
  const repo = createTestRepo(join(dir, 'repo'), DEMO_SIGNER);
  return {
    repo,
    key,
    allowedSignersFile,
    // The webhook names github.com (as GitHub would); the verifier and gate fetch from the local bare repository.
    urlRewrites: { [DEMO_REPO_URL]: repo.url },
    application: demoApplication({ name: DEMO_APP.name, namespace: DEMO_APP.namespace, repoURL: DEMO_REPO_URL, branch: 'main' }),
    policy: {
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name: 'demo-signers', namespace: DEMO_APP.namespace },
      spec: {
        mode: 'Enforce',
        selector: { namespaces: [DEMO_APP.namespace] },
        // Normalised, as the CRD requires (no .git suffix): a real API server refuses the object otherwise.
        repository: DEMO_REPO_URL.replace(/\.git$/, ''),
        branches: ['main'],
        commits: { ssh: { allowedSigners: `${key.allowedSignersLine(DEMO_SIGNER)}\n` } },
      },
    },
  };
}

/** Sends a signed `push` webhook for `sha` like GitHub does; returns the HTTP status. */
export async function sendPush(
  stack: Stack,
  sha: string,
  before?: string,
  delivery?: string,
): Promise<{ status: number; delivery: string; body: string }> {
  const body = JSON.stringify(pushPayload({ repoUrl: DEMO_REPO_URL, fullName: 'demo/app', after: sha, before }));
  const headers = deliveryHeaders(stack.secrets[0] ?? '', 'push', body, delivery);
  const res = await fetch(`${stack.receiverUrl}/webhooks/github`, { method: 'POST', headers, body });
  return { status: res.status, delivery: headers['x-github-delivery'] ?? '', body: await res.text() };
}

export interface AppView {
  revision: string | undefined;
  annotations: Record<string, string>;
  resourceVersion: string | undefined;
}

export function createAppReader(kubeconfig: string): (ns: string, name: string) => Promise<AppView> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(CustomObjectsApi);
  return async (namespace, name) => {
    const app = (await api.getNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace,
      plural: 'applications',
      name,
    })) as {
      metadata: { annotations?: Record<string, string>; resourceVersion?: string };
      spec: { source?: { targetRevision?: string } };
    };
    return {
      revision: app.spec.source?.targetRevision,
      annotations: app.metadata.annotations ?? {},
      resourceVersion: app.metadata.resourceVersion,
    };
  };
}

export interface DecisionView {
  id: string;
  app: string;
  sha: string;
  action: string;
  reason: string;
  deliveryId: string;
  verdict: { signer?: string; method: string; code: string };
}

/** Polls the gate's audit endpoint until a decision for sha (optionally from one delivery) appears. */
export async function waitForDecision(
  gateUrl: string,
  sha: string,
  opts: { deliveryId?: string; timeoutMs?: number; app?: string } = {},
): Promise<DecisionView> {
  const app = opts.app ?? `${DEMO_APP.namespace}/${DEMO_APP.name}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    const res = await fetch(`${gateUrl}/api/decisions?sha=${sha}&app=${encodeURIComponent(app)}`).catch(() => undefined);
    if (res?.ok) {
      const { decisions } = (await res.json()) as { decisions: DecisionView[] };
      const hit = decisions.find((d) => !opts.deliveryId || d.deliveryId === opts.deliveryId);
      if (hit) return hit;
    }
    await sleep(25);
  }
  throw new StackError('DEMO_NO_DECISION', `no gate decision for ${sha} within ${opts.timeoutMs ?? 30_000} ms`);
}

export function gateUrlOf(stack: Stack): string {
  const gate = stack.processes.find((p) => p.service === 'gate');
  if (!gate) throw new StackError('SERVICE_EXITED', 'no gate process');
  return `http://127.0.0.1:${gate.port}`;
}

/** Runs the signed-then-unsigned story against a running stack; prints as it goes. */
export async function runDemo(stack: Stack, fx: DemoFixture, print: (line: string) => void): Promise<{ signed: string; unsigned: string }> {
  const readApp = createAppReader(stack.kubeconfig);
  const gateUrl = gateUrlOf(stack);
  const before = await readApp(DEMO_APP.namespace, DEMO_APP.name);
  print(
    `Application ${DEMO_APP.namespace}/${DEMO_APP.name} follows branch main of ${DEMO_REPO_URL}; targetRevision is now "${before.revision}".`,
  );

  const signed = fx.repo.commit('deploy v1 (signed)', { signWith: fx.key });
  fx.repo.push();
  print(`Pushed ${signed}, signed with SSH key ${fx.key.publicKey.split(' ')[1]?.slice(0, 16)}… (${DEMO_SIGNER} in allowed_signers).`);
  const r1 = await sendPush(stack, signed);
  print(`Sent a signed push webhook → HTTP ${r1.status}.`);
  const d1 = await waitForDecision(gateUrl, signed);
  const after = await readApp(DEMO_APP.namespace, DEMO_APP.name);
  print(`Gate: ${d1.action} (${d1.reason}); signer ${d1.verdict.signer ?? '-'} via ${d1.verdict.method}.`);
  print(
    `Application targetRevision is now ${after.revision}${after.revision === signed ? ' ✔ pinned to the signed commit' : ' ✘ NOT pinned'}.`,
  );

  const unsigned = fx.repo.commit('sneaky change (unsigned)');
  fx.repo.push();
  print(`Pushed ${unsigned}, unsigned.`);
  const r2 = await sendPush(stack, unsigned, signed);
  print(`Sent its push webhook → HTTP ${r2.status}.`);
  const d2 = await waitForDecision(gateUrl, unsigned);
  const after2 = await readApp(DEMO_APP.namespace, DEMO_APP.name);
  print(`Gate: ${d2.action} (${d2.reason}).`);
  print(
    `Application targetRevision stays ${after2.revision}${after2.revision === signed ? ' ✔ the unsigned commit was refused' : ' ✘ unexpected'}.`,
  );
  return { signed, unsigned };
}

/**
 * The admission backstop in the demo: a Pod running an image by tag, created in the namespace the demo Application
 * deploys into, goes through the sandbox's admission (the registered webhook) and is refused. Returns whether it was.
 */
export async function demoAdmission(stack: Stack, print: (line: string) => void): Promise<boolean> {
  if (!stack.sandbox || !stack.admissionUrl) return true;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'unverified-demo', namespace: DEMO_APP.name },
    spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] },
  };
  const res = await fetch(`${stack.sandbox.url}/api/v1/namespaces/${DEMO_APP.name}/pods`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.sandbox.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(pod),
  });
  const body = (await res.json()) as { message?: string };
  if (res.status === 403) {
    print(`✔ a Pod running nginx:1.27 in namespace ${DEMO_APP.name} was refused at admission: ${body.message ?? ''}`);
    return true;
  }
  print(`✘ a Pod running an unverified image was not refused at admission (HTTP ${res.status})`);
  return false;
}
