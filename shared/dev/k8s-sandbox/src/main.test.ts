import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSeed } from './main.js';

const DIST_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

describe('parseSeed', () => {
  it('reads YAML streams, JSON arrays and List objects', () => {
    const yaml = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n';
    expect(parseSeed(yaml).map((o: any) => o.metadata.name)).toEqual(['a', 'b']);
    expect(parseSeed(JSON.stringify([{ kind: 'X' }, { kind: 'Y' }]))).toEqual([{ kind: 'X' }, { kind: 'Y' }]);
    expect(parseSeed(JSON.stringify({ kind: 'List', items: [{ kind: 'Z' }] }))).toEqual([{ kind: 'Z' }]);
  });
});

// The entry point is run as built (`npm test` builds first); from a bare source checkout this is skipped.
// npm test builds first, so dist/main.js exists; without it this must fail, not skip.
describe('node dist/main.js', () => {
  it('serves the seed, writes a kubeconfig, prints both, and exits cleanly on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'k8s-sandbox-main-'));
    try {
      const seed = join(dir, 'seed.yaml');
      await writeFile(
        seed,
        'apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: apps}\nspec:\n  project: default\n  source: {repoURL: "https://example.invalid/r.git", targetRevision: main}\n  destination: {server: "https://kubernetes.default.svc", namespace: web}\n',
      );
      const kubeconfig = join(dir, 'kubeconfig');
      const child = spawn(process.execPath, [DIST_MAIN, '--port', '0', '--kubeconfig', kubeconfig, '--seed', seed], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /listening on (\S+)\nkubeconfig: (\S+)\n/.exec(out);
          if (m?.[1]) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
      });
      expect(out).toContain(`kubeconfig: ${kubeconfig}`);
      const config = await readFile(kubeconfig, 'utf8');
      const token = /token: "([^"]+)"/.exec(config)?.[1];
      const res = await fetch(`${url}/apis/argoproj.io/v1alpha1/namespaces/apps/applications/web`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
