/**
 * `npm start`'s program, run as a user would (with --exit-after-demo so it ends by itself): it must start its own
 * Redis and sandbox, show the signed commit pinned and the unsigned one refused, and leave no process behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@gitops-gate/local-stack';
import { freePort } from '@gitops-gate/testing';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start (demo mode)', () => {
  it('pins a signed commit, refuses an unsigned one, and stops everything it started', async () => {
    const port = await freePort();
    // WEBHOOK_SECRETS is honoured (a real GitHub webhook can be pointed at it); no GitHub credentials = reporting off.
    const env = { ...process.env, RECEIVER_PORT: String(port), WEBHOOK_SECRETS: 'start-test-secret,older-secret' };
    for (const k of ['GITHUB_APP_ID', 'GITHUB_APP_PRIVATE_KEY_FILE', 'GITHUB_TOKEN']) delete env[k];
    delete env.REDIS_URL;
    delete env.KUBECONFIG;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'shared/dev/local-stack/dist/cli.js'), '--exit-after-demo'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(out).toContain('✔ pinned to the signed commit');
    expect(out).toContain('✔ the unsigned commit was refused');
    // The admission backstop: the webhook runs against the sandbox and refuses an image by tag.
    expect(out).toMatch(
      /✔ a Pod running nginx:1.27 .* refused at admission: admission webhook "images.admission.gitops-gate.io" denied the request: .*TAG_ONLY/,
    );
    expect(out).toMatch(/Admission: +kubectl --kubeconfig \S+ apply -f \S+unverified-pod.yaml/);
    expect(out).toContain(`POST http://127.0.0.1:${port}/webhooks/github`);
    expect(out).toContain('Secret:       start-test-secret (from WEBHOOK_SECRETS)');
    expect(out).toMatch(/GitHub: +off \(no GITHUB_APP_ID/);
    // Every run starts from an empty Redis unless --keep-state (redis.test.ts shows the data really goes).
    expect(out).toContain("State:        fresh: earlier runs' Redis data deleted (--keep-state keeps it)");
    expect(out).toContain(
      `npx gitops-gate webhook push --repo ${join(REPO_ROOT, '.gitops-gate/demo/repo/work')} --branch main --url http://127.0.0.1:${port}/webhooks/github --secret start-test-secret --clone-url https://github.com/demo/app.git`,
    );
    expect(out).toContain('Stopped: no process left running.');
    expect(code).toBe(0);
    // No redis-server or service of this run survives it.
    const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
    const leftovers = ps.split('\n').filter((l) => l.includes(join(REPO_ROOT, '.gitops-gate')) || l.includes(`--port ${port}`));
    expect(leftovers).toEqual([]);
    expect(alive(child.pid!)).toBe(false);
  }, 120_000);
});
