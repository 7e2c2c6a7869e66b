import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RekorLookupError, createRekorClient } from './index.js';

const UUID = 'ab'.repeat(32);
const TREE_UUID = '24296fb24b8ad77a' + UUID;
const ENTRY = {
  body: 'e30=',
  integratedTime: 1700000000,
  logID: 'cd'.repeat(32),
  logIndex: 42,
  verification: { signedEntryTimestamp: 'AAAA' },
};

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('createRekorClient', () => {
  let url = '';
  let handler: Handler = () => undefined;
  const seen: Array<{ method: string; url: string; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      handler(req, body, res);
    });
  });
  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof value === 'string' ? value : JSON.stringify(value));
  };
  const standard: Handler = (req, _body, res) => {
    if (req.url === '/api/v1/index/retrieve') return json(res, 200, [UUID]);
    if (req.url === `/api/v1/log/entries/${UUID}`) return json(res, 200, { [TREE_UUID]: ENTRY });
    json(res, 404, {});
  };

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('searches the index by hash and certificate (intersection), then fetches each entry', async () => {
    handler = standard;
    seen.length = 0;
    const client = createRekorClient({ url });
    const pemText = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const entries = await client.findEntries({ hash: `sha256:${'0'.repeat(64)}`, publicKeyPem: pemText });
    expect(entries).toEqual([{ uuid: TREE_UUID, ...ENTRY }]);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /api/v1/index/retrieve', `GET /api/v1/log/entries/${UUID}`]);
    expect(JSON.parse(seen[0]!.body)).toEqual({
      hash: `sha256:${'0'.repeat(64)}`,
      publicKey: { format: 'x509', content: Buffer.from(pemText).toString('base64') },
      operator: 'and',
    });
  });

  it('caches answers by query; empty answers are asked again', async () => {
    handler = standard;
    seen.length = 0;
    const client = createRekorClient({ url });
    const q = { hash: `sha256:${'1'.repeat(64)}` };
    await client.findEntries(q);
    await client.findEntries(q);
    await Promise.all([client.findEntries({ hash: `sha256:${'2'.repeat(64)}` }), client.findEntries({ hash: `sha256:${'2'.repeat(64)}` })]);
    expect(seen.filter((s) => s.method === 'POST')).toHaveLength(2);

    handler = (req, _b, res) => json(res, 200, []);
    seen.length = 0;
    const empty = { hash: `sha256:${'3'.repeat(64)}` };
    expect(await client.findEntries(empty)).toEqual([]);
    expect(await client.findEntries(empty)).toEqual([]);
    expect(seen).toHaveLength(2);
  });

  it('fetches at most maxEntries entries', async () => {
    handler = (req, _b, res) => {
      if (req.url === '/api/v1/index/retrieve')
        return json(
          res,
          200,
          Array.from({ length: 10 }, (_, i) => i.toString(16).padStart(64, '0')),
        );
      const id = req.url!.split('/').pop()!;
      json(res, 200, { [id]: ENTRY });
    };
    seen.length = 0;
    const entries = await createRekorClient({ url, maxEntries: 3 }).findEntries({ hash: `sha256:${'4'.repeat(64)}` });
    expect(entries).toHaveLength(3);
    expect(seen).toHaveLength(4);
  });

  const broken: Array<[string, Handler, RegExp, ('REKOR_UNAVAILABLE' | 'REKOR_LOOKUP_FAILED')?]> = [
    // Transient: the same request may succeed later (retried, then deferred by the verifier; never a final rejection).
    ['HTTP 503', (_q, _b, res) => json(res, 503, {}), /HTTP 503/, 'REKOR_UNAVAILABLE'],
    ['HTTP 429', (_q, _b, res) => json(res, 429, {}), /HTTP 429/, 'REKOR_UNAVAILABLE'],
    // Final: asking again gets the same answer.
    ['HTTP 404', (_q, _b, res) => json(res, 404, {}), /HTTP 404/],
    ['invalid JSON', (_q, _b, res) => json(res, 200, '{nope'), /invalid JSON/],
    ['an index that is not a uuid list', (_q, _b, res) => json(res, 200, ['../../etc/passwd']), /entry UUIDs/],
    [
      'an entry response for another uuid',
      (req, _b, res) => (req.url === '/api/v1/index/retrieve' ? json(res, 200, [UUID]) : json(res, 200, { ['cd'.repeat(32)]: ENTRY })),
      /does not hold entry/,
    ],
    [
      'an entry without its fields',
      (req, _b, res) => (req.url === '/api/v1/index/retrieve' ? json(res, 200, [UUID]) : json(res, 200, { [UUID]: { body: 1 } })),
      /lacks body/,
    ],
    [
      'a malformed inclusion proof',
      (req, _b, res) =>
        req.url === '/api/v1/index/retrieve'
          ? json(res, 200, [UUID])
          : json(res, 200, {
              [UUID]: { ...ENTRY, verification: { inclusionProof: { logIndex: -1, rootHash: 'x', treeSize: 1, hashes: [] } } },
            }),
      /malformed inclusion proof/,
    ],
  ];
  for (const [name, h, message, code = 'REKOR_LOOKUP_FAILED'] of broken) {
    it(`turns ${name} into RekorLookupError ${code}`, async () => {
      handler = h;
      const err = await createRekorClient({ url })
        .findEntries({ hash: `sha256:${'5'.repeat(64)}` })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RekorLookupError);
      expect(err).toMatchObject({ code, transient: code === 'REKOR_UNAVAILABLE' });
      expect((err as Error).message).toMatch(message);
    });
  }

  it('gives up after timeoutMs', async () => {
    handler = () => undefined; // never answers
    const err = await createRekorClient({ url, timeoutMs: 100 })
      .findEntries({ hash: `sha256:${'6'.repeat(64)}` })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RekorLookupError);
    expect(err).toMatchObject({ code: 'REKOR_UNAVAILABLE', transient: true });
    expect((err as Error).message).toMatch(/unreachable/);
  });

  it('uses an injected fetch', async () => {
    const calls: string[] = [];
    const fakeFetch = (async (input: string | URL | Request) => {
      calls.push(input instanceof Request ? input.url : String(input));
      return new Response(JSON.stringify([]), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    expect(
      await createRekorClient({ url: 'https://rekor.example.test', fetch: fakeFetch }).findEntries({ hash: `sha256:${'7'.repeat(64)}` }),
    ).toEqual([]);
    expect(calls).toEqual(['https://rekor.example.test/api/v1/index/retrieve']);
  });

  it('refuses bad configuration and queries', async () => {
    expect(() => createRekorClient({ url: 'not a url' })).toThrow(RekorLookupError);
    expect(() => createRekorClient({ url: 'file:///etc/passwd' })).toThrow(RekorLookupError);
    const client = createRekorClient({ url });
    await expect(client.findEntries({})).rejects.toBeInstanceOf(RekorLookupError);
    await expect(client.findEntries({ hash: 'md5:00' })).rejects.toBeInstanceOf(RekorLookupError);
  });
});
