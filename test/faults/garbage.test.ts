/**
 * Garbage at the receiver's door: random and truncated bodies, invalid UTF-8, deeply nested JSON, wrong content
 * types, huge and malformed headers, oversize bodies, request smuggling, raw non-HTTP bytes and slowloris-style
 * connections. Every one gets a clear 4xx (or its connection closed, for the ones that never finish a request), the
 * process stays healthy (same pid, /healthz 200, a real delivery still accepted) and nothing is queued.
 *
 * Only the receiver runs (no verifiers, no gates), so anything queued by mistake stays visible in the verify queue.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_REPO_URL } from '@gitops-gate/local-stack';
import { pushPayload, signBody } from '@gitops-gate/testing';
import { rssKiB, startHarness, waitFor, type Harness } from './lib/harness.js';

let h: Harness;
let pid: number;
let port: number;
let secret: string;
let rssStart: number;
const VALID_SHA = 'a'.repeat(40);

beforeAll(async () => {
  h = await startHarness();
  const receiver = h.stack.processes.find((p) => p.service === 'receiver')!;
  pid = receiver.child.pid!;
  port = receiver.port;
  secret = h.stack.secrets[0]!;
  rssStart = rssKiB(pid);
}, 120_000);

afterAll(async () => {
  await h?.close();
});

interface Reply {
  status: number;
  body: string;
}

/** One HTTP request with exactly these headers (no defaults added but Host and Content-Length when a body is given). */
function send(opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/webhooks/github',
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...opts.headers },
        agent: false,
        timeout: 20_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A signed delivery with valid GitHub headers around arbitrary body bytes. */
function signed(body: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
  return send({
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signBody(secret, Buffer.isBuffer(body) ? body : Buffer.from(body)),
      ...headers,
    },
  });
}

/** Raw bytes on a TCP connection; resolves with the status line's code (0 if none) once the server closes it. */
function raw(chunks: (Buffer | string)[], timeoutMs = 15_000): Promise<{ status: number; text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text, closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
    sock.on('close', () => done(true));
    sock.on('error', () => undefined);
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
    });
  });
}

const validPush = () => JSON.stringify(pushPayload({ repoUrl: DEMO_REPO_URL, fullName: 'demo/app', after: VALID_SHA }));

async function nothingQueued(): Promise<void> {
  const counts = await h.verifyQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'waiting-children');
  expect(
    Object.values(counts).reduce((a, b) => a + b, 0),
    JSON.stringify(counts),
  ).toBe(0);
  const [, keys] = await h.client.scan('0', 'MATCH', `${h.prefix}:${h.verifyQueue.name}:de:*`, 'COUNT', 10_000);
  expect(keys).toEqual([]);
}

async function healthy(): Promise<void> {
  expect(process.kill(pid, 0)).toBe(true);
  expect(h.stack.processes.find((p) => p.service === 'receiver')!.child.exitCode).toBeNull();
  const res = await fetch(`${h.stack.receiverUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
  expect(res.status).toBe(200);
}

describe('garbage at the receiver', () => {
  it('bodies: random, truncated, invalid UTF-8, deeply nested, not a payload — 400 (signed) or 401 (unsigned)', async () => {
    const push = validPush();
    const deepArrays = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const deepObjects = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const cases: [string, Buffer | string, number, RegExp?][] = [
      ['random bytes', randomBytes(4096), 400, /BAD_PAYLOAD/],
      ['random printable text', randomBytes(3000).toString('base64'), 400, /not valid JSON/],
      ['truncated JSON', push.slice(0, Math.floor(push.length / 2)), 400, /not valid JSON/],
      ['cut after one byte', push.slice(0, 1), 400, /not valid JSON/],
      ['empty body', '', 400, /not valid JSON/],
      [
        'invalid UTF-8 inside a JSON string',
        Buffer.concat([Buffer.from(push.slice(0, 20)), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(push.slice(20))]),
        400,
        /UTF-8/,
      ],
      [
        'UTF-8 encoded surrogate half',
        Buffer.concat([Buffer.from('{"ref":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
        400,
        /UTF-8/,
      ],
      [
        'overlong UTF-8 encoding of "/"',
        Buffer.concat([Buffer.from('{"ref":"refs'), Buffer.from([0xc0, 0xaf]), Buffer.from('heads/main"}')]),
        400,
        /UTF-8/,
      ],
      ['UTF-16 body', Buffer.from(push, 'utf16le'), 400, /BAD_PAYLOAD/],
      ['100 000 nested arrays', deepArrays, 400, /BAD_PAYLOAD/],
      ['100 000 nested objects', deepObjects, 400, /BAD_PAYLOAD/],
      ['JSON null', 'null', 400, /BAD_PAYLOAD/],
      ['JSON string', '"push"', 400, /BAD_PAYLOAD/],
      ['JSON number out of range', '1e999', 400, /BAD_PAYLOAD/],
      ['push without after', JSON.stringify({ ...JSON.parse(push), after: undefined }), 400, /after/],
      ['push with a short sha', JSON.stringify({ ...JSON.parse(push), after: 'abc' }), 400, /after/],
    ];
    for (const [name, body, status, message] of cases) {
      const res = await signed(body);
      expect(res.status, `${name}: ${res.body.slice(0, 200)}`).toBe(status);
      if (message) expect(res.body, name).toMatch(message);
      // The same bytes without a valid signature never get past the HMAC check.
      const forged = await signed(body, { 'x-hub-signature-256': signBody('not-the-secret', body) });
      expect(forged.status, `${name} (forged)`).toBe(401);
    }
    await healthy();
    await nothingQueued();
  }, 120_000);

  it('form bodies and content types: 415 for anything but JSON and GitHub form encoding; 400 for a bad form', async () => {
    const push = validPush();
    const cases: [string, Record<string, string>, Buffer | string, number][] = [
      ['text/plain', { 'content-type': 'text/plain' }, push, 415],
      ['application/xml', { 'content-type': 'application/xml' }, '<push/>', 415],
      [
        'multipart/form-data',
        { 'content-type': 'multipart/form-data; boundary=x' },
        `--x\r\nContent-Disposition: form-data; name="payload"\r\n\r\n${push}\r\n--x--\r\n`,
        415,
      ],
      ['application/octet-stream', { 'content-type': 'application/octet-stream' }, randomBytes(64), 415],
      ['a garbage content type', { 'content-type': '\u00ff\u00fe;;;=' }, push, 415],
      ['form without payload=', { 'content-type': 'application/x-www-form-urlencoded' }, 'foo=bar&baz', 400],
      [
        'form with a garbage payload',
        { 'content-type': 'application/x-www-form-urlencoded' },
        `payload=${encodeURIComponent('{"ref":')}`,
        400,
      ],
      [
        'form with invalid UTF-8',
        { 'content-type': 'application/x-www-form-urlencoded' },
        Buffer.concat([Buffer.from('payload='), Buffer.from([0xff, 0xff])]),
        400,
      ],
    ];
    for (const [name, headers, body, status] of cases) {
      const res = await signed(body, headers);
      expect(res.status, `${name}: ${res.body.slice(0, 200)}`).toBe(status);
    }
    // No content type at all, with a signed body.
    const body = Buffer.from(push);
    const res = await send({
      body,
      headers: { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signBody(secret, body) },
    });
    expect(res.status, `no content type: ${res.body}`).toBe(415);
    await healthy();
    await nothingQueued();
  }, 60_000);

  it('headers: missing or malformed GitHub headers 400/401; 64 KB header 431; 30 MB Content-Length 413 without a body', async () => {
    const body = validPush();
    const sig = signBody(secret, body);
    const base = {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': sig,
    };
    const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k));
    const cases: [string, Record<string, string>, number][] = [
      ['no X-GitHub-Event', without('x-github-event'), 400],
      ['no X-GitHub-Delivery', without('x-github-delivery'), 400],
      ['no signature', without('x-hub-signature-256'), 401],
      ['event with capitals and spaces', { ...base, 'x-github-event': 'Push Event' }, 400],
      ['1000-character event', { ...base, 'x-github-event': 'a'.repeat(1000) }, 400],
      ['delivery id with a colon', { ...base, 'x-github-delivery': 'abc:def' }, 400],
      ['500-character delivery id', { ...base, 'x-github-delivery': 'a'.repeat(500) }, 400],
      ['signature not hex', { ...base, 'x-hub-signature-256': `sha256=${'zz'.repeat(32)}` }, 401],
      ['sha1 signature', { ...base, 'x-hub-signature-256': `sha1=${'0'.repeat(40)}` }, 401],
      ['truncated signature', { ...base, 'x-hub-signature-256': sig.slice(0, 20) }, 401],
      ['8 KB signature', { ...base, 'x-hub-signature-256': `sha256=${'ab'.repeat(4096)}` }, 401],
    ];
    for (const [name, headers, status] of cases) {
      const res = await send({ body, headers });
      expect(res.status, `${name}: ${res.body.slice(0, 200)}`).toBe(status);
    }

    // Node's 16 KB header limit: 431 and the connection closed, before any route runs.
    const huge = await raw([`POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Junk: ${'a'.repeat(64 * 1024)}\r\n\r\n`]);
    expect(huge.status).toBe(431);
    expect(huge.closed).toBe(true);
    const many = await raw([
      `POST /webhooks/github HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
    ]);
    expect(many.status).toBe(431);
    const longUrl = await raw([`POST /webhooks/github?${'q'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`]);
    expect(longUrl.status).toBe(431);

    // Over GitHub's 25 MB: refused from Content-Length, without waiting for a body that never comes.
    const t0 = Date.now();
    const tooBig = await raw(
      [
        `POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: ${randomUUID()}\r\nX-Hub-Signature-256: ${sig}\r\nContent-Length: ${30 * 1024 * 1024}\r\n\r\n`,
      ],
      8_000,
    );
    expect(tooBig.status).toBe(413);
    expect(Date.now() - t0).toBeLessThan(5_000);
    // The same over chunked encoding (no Content-Length): cut off once 25 MB have arrived.
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const chunks: (Buffer | string)[] = [
      `POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: ${randomUUID()}\r\nX-Hub-Signature-256: ${sig}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    ];
    for (let i = 0; i < 27; i++) chunks.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n');
    chunks.push('0\r\n\r\n');
    const chunked = await raw(chunks, 20_000);
    expect(chunked.status).toBe(413);
    await healthy();
    await nothingQueued();
  }, 90_000);

  it('broken HTTP: smuggling, bad header bytes, non-HTTP bytes, wrong methods — 4xx, connection closed', async () => {
    const cases: [string, (Buffer | string)[], number][] = [
      [
        'Content-Length and Transfer-Encoding',
        ['POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
        400,
      ],
      [
        'two different Content-Lengths',
        ['POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
        400,
      ],
      ['control byte in a header value', ['POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pu\u0001sh\r\n\r\n'], 400],
      ['space before the colon', ['POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event : push\r\n\r\n'], 400],
      ['random bytes instead of HTTP', [randomBytes(2048)], 400],
      [
        'bad chunk size',
        [
          'POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
        ],
        400,
      ],
    ];
    for (const [name, chunks, status] of cases) {
      const res = await raw(chunks);
      expect(res.status, `${name}: ${res.text.slice(0, 120)}`).toBe(status);
      expect(res.closed, name).toBe(true);
    }
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await send({ method, headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
      expect(res.status, method).toBe(404);
    }
    expect(
      (await send({ method: 'POST', path: '/../../etc/passwd', body: '{}', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(404);
    await healthy();
    await nothingQueued();
  }, 60_000);

  it('slowloris: stalled headers, stalled bodies and silent connections are cut off within the 9 s request timeout (+ slack); the receiver keeps answering meanwhile', async () => {
    const N = 20;
    // GitHub gives up after 10 s and the receiver sets requestTimeout 9 s: nothing legitimate takes longer.
    const BOUND_MS = 20_000;
    const sockets: { sock: Socket; kind: string; openedAt: number; closedAt?: number; text: string }[] = [];
    const open = (kind: string, first: string): void => {
      const sock = connect(port, '127.0.0.1');
      const entry = { sock, kind, openedAt: Date.now(), closedAt: undefined as number | undefined, text: '' };
      sock.on('data', (d: Buffer) => (entry.text += d.toString('latin1')));
      sock.on('close', () => (entry.closedAt ??= Date.now()));
      sock.on('error', () => undefined);
      if (first) sock.on('connect', () => sock.write(first));
      sockets.push(entry);
    };
    const signedHead = () => {
      const b = validPush();
      return `POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: ${randomUUID()}\r\nX-Hub-Signature-256: ${signBody(secret, b)}\r\nContent-Length: ${b.length}\r\n\r\n${b.slice(0, 100)}`;
    };
    for (let i = 0; i < N; i++) {
      open('stalled headers', 'POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      open('dribbled headers', 'POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      open('stalled body', signedHead());
      open('dribbled body', signedHead());
      open('silent', '');
    }
    // One byte every 500 ms on the dribbling connections (never completing a request), until they are closed.
    const dribble = setInterval(() => {
      for (const s of sockets) if (s.kind.startsWith('dribbled') && s.closedAt === undefined) s.sock.write(' ');
    }, 500);
    const startedAt = Date.now();
    try {
      // Meanwhile the receiver answers health checks and real deliveries at once.
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        await healthy();
        const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
        expect((await signed(ping, { 'x-github-event': 'ping' })).status).toBe(200);
        expect(Date.now() - t0).toBeLessThan(2_000);
        await sleep(500);
      }
      await waitFor(
        'every slow connection closed',
        BOUND_MS - (Date.now() - startedAt),
        () => sockets.every((s) => s.closedAt !== undefined),
        250,
      ).catch(() => undefined);
    } finally {
      clearInterval(dribble);
    }
    const kinds = [...new Set(sockets.map((s) => s.kind))];
    const summary = kinds.map((k) => {
      const of = sockets.filter((s) => s.kind === k);
      const open = of.filter((s) => s.closedAt === undefined).length;
      const worst = Math.max(...of.filter((s) => s.closedAt !== undefined).map((s) => s.closedAt! - s.openedAt), 0);
      return `${k}: ${open ? `${open}/${of.length} still open after ${(BOUND_MS / 1000).toFixed(0)} s` : `closed within ${(worst / 1000).toFixed(1)} s`}`;
    });
    console.log(`slow connections — ${summary.join('; ')}`);
    for (const s of sockets) s.sock.destroy();
    expect(sockets.filter((s) => s.closedAt === undefined).length, summary.join('; ')).toBe(0);
    for (const s of sockets.filter((x) => x.kind !== 'silent')) {
      // 408 Request Timeout (or a plain close).
      expect([0, 408], `${s.kind}: ${s.text.slice(0, 80)}`).toContain(Number(/^HTTP\/1\.[01] (\d{3})/.exec(s.text)?.[1] ?? 0));
    }
    await healthy();
    await nothingQueued();
  }, 60_000);

  it('after all of it: same process, healthy, ready, a real delivery is still queued, memory sane', async () => {
    await healthy();
    expect((await fetch(`${h.stack.receiverUrl}/readyz`)).status).toBe(200);
    await nothingQueued();
    const rss = rssKiB(pid);
    console.log(`receiver VmRSS ${(rssStart / 1024).toFixed(1)} MiB at start → ${(rss / 1024).toFixed(1)} MiB after the garbage`);
    expect(rss - rssStart).toBeLessThan(200 * 1024);
    // The rejections were counted.
    const metrics = await (await fetch(`${h.stack.receiverUrl}/metrics`)).text();
    expect(metrics).toMatch(/gitops_gate_deliveries_total\{[^}]*outcome="bad_signature"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/gitops_gate_deliveries_total\{[^}]*outcome="bad_payload"[^}]*\} [1-9]/);
    // And the door still works: a real delivery is accepted and queued exactly once.
    const res = await signed(validPush());
    expect(res.status).toBe(202);
    expect(JSON.parse(res.body)).toEqual({ queued: true });
    expect(await h.verifyQueue.getWaitingCount()).toBe(1);
  }, 30_000);
});
