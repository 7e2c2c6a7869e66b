/**
 * Renders kustomizations with the real `kubectl kustomize` and parses the multi-document YAML it prints.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump, loadAll } from 'js-yaml';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEPLOY = join(REPO_ROOT, 'deploy');
export const OVERLAYS = ['dev', 'production'] as const;
export type Overlay = (typeof OVERLAYS)[number];

// Loose on purpose: manifests are data under test, read through narrow helpers below.
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any }; [k: string]: any };

const KUBECTL = process.env.KUBECTL ?? 'kubectl';

export function parseDocs(text: string): K8sObject[] {
  return loadAll(text).filter((d): d is K8sObject => d !== null && typeof d === 'object');
}

export function kustomize(dir: string): K8sObject[] {
  const out = execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return parseDocs(out);
}

const cache = new Map<string, K8sObject[]>();

/** One overlay of deploy/overlays, rendered once per test file. */
export function renderOverlay(overlay: Overlay): K8sObject[] {
  const dir = join(DEPLOY, 'overlays', overlay);
  let docs = cache.get(dir);
  if (!docs) {
    docs = kustomize(dir);
    cache.set(dir, docs);
  }
  return docs;
}

/**
 * Renders an overlay with extra kustomize components (deploy/optional/*), as a user would by adding `components:`
 * to their own overlay. Kustomize wants relative paths, so a throw-away kustomization points back into deploy/.
 */
export function renderWithComponents(overlay: Overlay, components: string[]): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'gitops-gate-kustomize-'));
  try {
    const rel = (p: string) => relative(dir, join(DEPLOY, p));
    const k = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [rel(`overlays/${overlay}`)],
      components: components.map((c) => rel(`optional/${c}`)),
    };
    writeFileSync(join(dir, 'kustomization.yaml'), dump(k));
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function loadYamlFile(path: string): K8sObject[] {
  return parseDocs(readFileSync(path, 'utf8'));
}

export function find(docs: K8sObject[], kind: string, name?: string): K8sObject[] {
  return docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
}

export function one(docs: K8sObject[], kind: string, name: string): K8sObject {
  const found = find(docs, kind, name);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}/${name}, found ${found.length}`);
  return found[0]!;
}

/** Pod templates of every workload, with the workload they belong to. */
export function podTemplates(docs: K8sObject[]): { owner: K8sObject; template: K8sObject['spec'] }[] {
  return docs
    .filter((d) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(d.kind))
    .map((owner) => ({ owner, template: owner.spec.template }));
}

export const SERVICES = ['receiver', 'verifier', 'gate'] as const;
export type Service = (typeof SERVICES)[number];
export const deploymentName = (s: Service) => `gitops-gate-${s}`;
export const NAMESPACE = 'gitops-gate';
