// Client paths that Debian's distribution 2.8 cannot exercise, against a tiny loopback fake: the OCI 1.1 referrers
// API (filtering, pagination), basic-auth challenges, 429, redirects to another origin, tag-list pagination.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciError } from './errors.js';
import { createRegistryClient } from './registry.js';

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

async function serve(route: Route): Promise<{ host: string; close(): Promise<void>; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req);
    route(req, res, new URL(req.url ?? '/', 'http://fake'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function caught(p: Promise<unknown>): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OciError) return e;
    throw e;
  }
  throw new Error('expected an OciError');
}

const SUBJECT = `sha256:${'ab'.repeat(32)}`;
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const desc = (n: number, artifactType: string) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${n.toString(16).padStart(64, '0')}`,
  size: 100 + n,
  artifactType,
});

describe('referrers API (fake registry)', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  let mode: 'server-filter' | 'no-filter' | 'paged' = 'server-filter';
  const all = [desc(1, BUNDLE), desc(2, 'application/spdx+json'), desc(3, BUNDLE)];

  beforeAll(async () => {
    srv = await serve((_req, res, url) => {
      if (url.pathname !== `/v2/org/app/referrers/${SUBJECT}`) {
        res.writeHead(404).end();
        return;
      }
      const filter = url.searchParams.get('artifactType');
      const headers: Record<string, string> = { 'content-type': 'application/vnd.oci.image.index.v1+json' };
      let manifests = all;
      if (mode === 'server-filter' && filter !== null) {
        manifests = all.filter((m) => m.artifactType === filter);
        headers['oci-filters-applied'] = 'artifactType';
      }
      if (mode === 'paged') {
        if (url.searchParams.get('last') === null) {
          manifests = all.slice(0, 2);
          headers['link'] = `</v2/org/app/referrers/${SUBJECT}?last=2>; rel="next"`;
        } else {
          manifests = all.slice(2);
          // A next link to another origin is never followed.
          headers['link'] = `<http://169.254.169.254/v2/org/app/referrers/${SUBJECT}?last=3>; rel="next"`;
        }
      }
      res
        .writeHead(200, headers)
        .end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('uses the API when the registry has it, with the artifactType filter', async () => {
    mode = 'server-filter';
    const c = createRegistryClient({ insecureHosts: [srv.host] });
    const r = await c.getReferrers(`${srv.host}/org/app`, SUBJECT, { artifactType: BUNDLE });
    expect(r.via).toBe('api');
    expect(r.manifests.map((m) => m.digest)).toEqual([all[0]!.digest, all[2]!.digest]);
    expect(srv.seen.at(-1)?.url).toBe(`/v2/org/app/referrers/${SUBJECT}?artifactType=${encodeURIComponent(BUNDLE)}`);
  });

  it('filters client-side when the registry did not apply the filter', async () => {
    mode = 'no-filter';
    const c = createRegistryClient({ insecureHosts: [srv.host] });
    const r = await c.getReferrers(`${srv.host}/org/app`, SUBJECT, { artifactType: BUNDLE });
    expect(r.manifests.map((m) => m.artifactType)).toEqual([BUNDLE, BUNDLE]);
    expect((await c.getReferrers(`${srv.host}/org/app`, SUBJECT)).manifests).toHaveLength(3);
  });

  it('follows pagination on the same origin only', async () => {
    mode = 'paged';
    const c = createRegistryClient({ insecureHosts: [srv.host] });
    const r = await c.getReferrers(`${srv.host}/org/app`, SUBJECT);
    expect(r.manifests.map((m) => m.digest)).toEqual(all.map((m) => m.digest));
  });
});

describe('auth, rate limits and redirects (fake registry)', () => {
  let storage: Awaited<ReturnType<typeof serve>>;
  let reg: Awaited<ReturnType<typeof serve>>;
  const blob = Buffer.from('signature material');
  const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;

  beforeAll(async () => {
    storage = await serve((_req, res) => {
      res.writeHead(200).end(blob);
    });
    reg = await serve((req, res, url) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
        return;
      }
      if (url.pathname === `/v2/org/app/blobs/${blobDigest}`) {
        res.writeHead(307, { location: `http://${storage.host}/storage/object?sig=abc` }).end();
      } else if (url.pathname === '/v2/org/app/blobs/sha256:' + 'c'.repeat(64)) {
        res.writeHead(307, { location: 'http://198.51.100.7/plain-http' }).end();
      } else if (url.pathname === '/v2/org/limited/manifests/latest') {
        res.writeHead(429).end();
      } else if (url.pathname === '/v2/org/app/tags/list') {
        const last = url.searchParams.get('last');
        if (last === null)
          res
            .writeHead(200, { link: '</v2/org/app/tags/list?n=2&last=b>; rel="next"' })
            .end(JSON.stringify({ name: 'org/app', tags: ['a', 'b'] }));
        else res.writeHead(200).end(JSON.stringify({ name: 'org/app', tags: ['c'] }));
      } else {
        res.writeHead(404).end();
      }
    });
  });
  afterAll(async () => {
    await reg?.close();
    await storage?.close();
  });

  it('answers a Basic challenge with the configured credentials', async () => {
    const anon = createRegistryClient({ insecureHosts: [reg.host, storage.host] });
    expect(await caught(anon.listTags(`${reg.host}/org/app`))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', transient: false });
    const c = createRegistryClient({
      insecureHosts: [reg.host, storage.host],
      credentials: { [reg.host]: { username: 'u', password: 'p' } },
    });
    expect(await c.listTags(`${reg.host}/org/app`)).toEqual(['a', 'b', 'c']);
  });

  it('follows a blob redirect to another origin without sending the Authorization header there', async () => {
    const c = createRegistryClient({
      insecureHosts: [reg.host, storage.host],
      credentials: { [reg.host]: { username: 'u', password: 'p' } },
    });
    expect((await c.getBlob(`${reg.host}/org/app`, blobDigest)).equals(blob)).toBe(true);
    const atStorage = storage.seen.at(-1)!;
    expect(atStorage.url).toBe('/storage/object?sig=abc');
    expect(atStorage.headers.authorization).toBeUndefined();
  });

  it('refuses a redirect to plain http on a host not listed as insecure', async () => {
    const c = createRegistryClient({ insecureHosts: [reg.host], credentials: { [reg.host]: { username: 'u', password: 'p' } } });
    expect(await caught(c.getBlob(`${reg.host}/org/app`, `sha256:${'c'.repeat(64)}`))).toMatchObject({
      code: 'INSECURE_REDIRECT',
      transient: false,
    });
  });

  it('429 is transient', async () => {
    const c = createRegistryClient({ insecureHosts: [reg.host], credentials: { [reg.host]: { username: 'u', password: 'p' } } });
    expect(await caught(c.getManifest(`${reg.host}/org/limited`, 'latest'))).toMatchObject({
      code: 'REGISTRY_RATE_LIMITED',
      transient: true,
    });
  });
});
