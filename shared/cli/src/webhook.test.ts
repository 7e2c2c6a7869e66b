import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRepo, generateSshKey, type TestRepo } from '@gitops-gate/testing';
import { main } from './main.js';

let repo: TestRepo;
let url: string;
const received: { headers: IncomingHttpHeaders; body: string }[] = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString('utf8')));
  req.on('end', () => {
    received.push({ headers: req.headers, body });
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"queued":true}');
  });
});

function run(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env };
  return main(args, io).then((code) => ({ code, out, err }));
}

beforeAll(async () => {
  repo = createTestRepo();
  repo.commit('first');
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/webhooks/github`;
});
afterAll(() => {
  server.close();
});

describe('gitops-gate webhook push', () => {
  it('sends the push delivery GitHub would send for the branch head, signed over the exact body', async () => {
    const key = generateSshKey(repo.workDir.replace(/\/work$/, ''), 'k');
    const before = repo.head();
    const sha = repo.commit('second', { signWith: key });
    const r = await run([
      'webhook',
      'push',
      '--repo',
      repo.workDir,
      '--url',
      url,
      '--secret',
      's3cret',
      '--clone-url',
      'https://github.com/org/app.git',
      '--repository-id',
      '42',
      '--installation-id',
      '7',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`push main ${sha} → 202`);
    const { headers, body } = received.at(-1)!;
    expect(headers['x-github-event']).toBe('push');
    expect(headers['x-github-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(headers['x-hub-signature-256']).toBe(`sha256=${createHmac('sha256', 's3cret').update(body).digest('hex')}`);
    const p = JSON.parse(body);
    expect(p).toMatchObject({
      ref: 'refs/heads/main',
      before,
      after: sha,
      created: false,
      deleted: false,
      repository: { id: 42, full_name: 'org/app', name: 'app', clone_url: 'https://github.com/org/app.git', owner: { login: 'org' } },
      installation: { id: 7 },
      head_commit: { id: sha, message: 'second' },
      pusher: { email: 'dev@example.com' },
    });
    expect(p.sender.login).toBeTruthy();
    expect(p.commits).toHaveLength(1);
  });

  it('takes the secret from WEBHOOK_SECRET; names what is missing or wrong (exit 2)', async () => {
    expect((await run(['webhook', 'push', '--repo', repo.workDir, '--url', url], { WEBHOOK_SECRET: 'x' })).code).toBe(0);
    const noSecret = await run(['webhook', 'push', '--repo', repo.workDir, '--url', url]);
    expect(noSecret.code).toBe(2);
    expect(noSecret.err).toContain('--secret');
    expect((await run(['webhook', 'push', '--repo', repo.workDir, '--url', url, '--secret', 's', '--branch', 'nope'])).err).toContain(
      'git log',
    );
    expect((await run(['webhook', 'push', '--repo', repo.workDir, '--url', url, '--secret', 's', '--repository-id', 'abc'])).err).toContain(
      '--repository-id must be a positive integer',
    );
    expect((await run(['webhook', 'pull'])).code).toBe(2);
    expect((await run(['webhook', 'push', '--help'])).code).toBe(0);
  });
});
