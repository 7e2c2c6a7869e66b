// The registry client against Debian's real docker-registry (distribution 2.8) on loopback: digests are checked,
// the referrers tag schema is used (2.8 has no referrers API), failures are classified, and the bearer-token
// handshake runs against the registry's own `auth: token` mode with a small token server in front.
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, pushReferrerBundle, pushTestImage, startTestRegistry } from '@gitops-gate/testing';
import type { TestRegistry } from '@gitops-gate/testing';
import { OciError } from './errors.js';
import { createRegistryClient } from './registry.js';

async function caught(p: Promise<unknown>): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OciError) return e;
    throw e;
  }
  throw new Error('expected an OciError');
}

describe('registry client against a real registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startTestRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });
  const client = () => createRegistryClient({ insecureHosts: [reg.url] });

  it('gets a manifest by digest and by tag, and blobs, with their digests checked', async () => {
    const img = await pushTestImage(reg.url, 'org/basic', { tag: 'v1' });
    const c = client();
    const byDigest = await c.getManifest(img.image, img.digest);
    expect(byDigest.digest).toBe(img.digest);
    expect(byDigest.bytes.equals(img.manifest)).toBe(true);
    expect(byDigest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const byTag = await c.getManifest(img.image, 'v1');
    expect(byTag.digest).toBe(img.digest);
    const layer = (byDigest.json['layers'] as Array<{ digest: string; size: number }>)[0]!;
    const blob = await c.getBlob(img.image, layer.digest);
    expect(blob.length).toBe(layer.size);
    expect(await c.listTags(img.image)).toEqual(['v1']);
  });

  it('missing manifests and blobs are NOT_FOUND (not transient)', async () => {
    const img = await pushTestImage(reg.url, 'org/missing');
    const e = await caught(client().getManifest(img.image, `sha256:${'1'.repeat(64)}`));
    expect(e).toMatchObject({ code: 'NOT_FOUND', transient: false });
    expect(await caught(client().getBlob(img.image, `sha256:${'2'.repeat(64)}`))).toMatchObject({ code: 'NOT_FOUND', transient: false });
    expect(await caught(client().getManifest(`${reg.url}/org/never-pushed`, 'latest'))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('manifest bytes that do not hash to the requested digest are refused (tampered storage)', async () => {
    const img = await pushTestImage(reg.url, 'org/tampered');
    const path = reg.blobPath(img.digest);
    const stored = readFileSync(path, 'utf8');
    // Still a valid manifest, different bytes: the registry serves them under the old digest.
    writeFileSync(path, stored.replace('image.layer.v1.tar"', 'image.layer.v1.tar+gzip"'));
    const e = await caught(client().getManifest(img.image, img.digest));
    expect(e).toMatchObject({ code: 'DIGEST_MISMATCH', transient: false });
    // By tag there is no expected digest; the client reports what it got.
    expect((await client().getManifest(img.image, 'latest')).digest).not.toBe(img.digest);
  });

  it('blob bytes are checked against the digest and capped in size', async () => {
    const big = randomBytes(4096);
    const { digest } = await pushBlob(reg.url, 'org/blobs', big);
    const image = `${reg.url}/org/blobs`;
    expect((await client().getBlob(image, digest)).equals(big)).toBe(true);
    expect(await caught(client().getBlob(image, digest, { maxBytes: 1000 }))).toMatchObject({ code: 'TOO_LARGE', transient: false });
    const path = reg.blobPath(digest);
    writeFileSync(path, randomBytes(4096));
    expect(await caught(client().getBlob(image, digest))).toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it('referrers: distribution 2.8 has no API (404), so the sha256-<hex> tag schema is read', async () => {
    const img = await pushTestImage(reg.url, 'org/refs');
    const c = client();
    expect(await c.getReferrers(img.image, img.digest)).toEqual({ manifests: [], via: 'tag-schema' });
    const d1 = await pushReferrerBundle(reg.url, 'org/refs', img.digest, { mediaType: 'x' });
    const d2 = await pushReferrerBundle(reg.url, 'org/refs', img.digest, { mediaType: 'y' });
    const all = await c.getReferrers(img.image, img.digest);
    expect(all.via).toBe('tag-schema');
    expect(all.manifests.map((m) => m.digest)).toEqual([d1, d2]);
    expect(all.manifests[0]).toMatchObject({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    });
    // The artifactType filter is applied client-side on this path.
    expect((await c.getReferrers(img.image, img.digest, { artifactType: 'application/spdx+json' })).manifests).toEqual([]);
    expect(
      (await c.getReferrers(img.image, img.digest, { artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' })).manifests,
    ).toHaveLength(2);
  });

  it('a registry 5xx is transient (real 500: a stored file the registry cannot stat)', async () => {
    const img = await pushTestImage(reg.url, 'org/broken');
    const path = reg.blobPath(img.digest);
    unlinkSync(path);
    symlinkSync(path, path); // ELOOP → distribution answers 500 UNKNOWN
    expect(await caught(client().getManifest(img.image, img.digest))).toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
      transient: true,
      status: 500,
    });
  });

  it('an unreachable registry is transient', async () => {
    const other = await startTestRegistry();
    const url = other.url;
    await other.stop();
    const c = createRegistryClient({ insecureHosts: [url] });
    expect(await caught(c.getManifest(`${url}/org/app`, `sha256:${'3'.repeat(64)}`))).toMatchObject({
      code: 'REGISTRY_NETWORK',
      transient: true,
    });
  });

  it('https is the default: a host not listed as insecure is never spoken to over http', async () => {
    const seen: string[] = [];
    const c = createRegistryClient({
      fetch: (async (u: URL) => {
        seen.push(String(u));
        throw new TypeError('fetch failed');
      }) as unknown as typeof fetch,
    });
    await caught(c.getManifest(`${reg.url}/org/app`, 'latest'));
    expect(seen[0]).toMatch(/^https:\/\//);
  });
});

// ---------------------------------------------------------------------------------------------------------------

interface TokenServer {
  realm: string;
  host: string;
  requests: Array<{ scope: string | null; service: string | null; authorized: boolean }>;
  issue(scope: string): string;
  close(): Promise<void>;
}

/** A token server like the ones in front of GHCR/Docker Hub: basic credentials in, a signed JWT (ES256, x5c) out. */
async function startTokenServer(opts: {
  keyPem: string;
  certDer: Buffer;
  issuer: string;
  service: string;
  username: string;
  password: string;
}): Promise<TokenServer> {
  const key = createPrivateKey(opts.keyPem);
  const b64url = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const issue = (scope: string): string => {
    const access = scope
      .split(' ')
      .filter((s) => s !== '')
      .map((s) => {
        const [type, name, actions] = s.split(':') as [string, string, string];
        return { type, name, actions: actions.split(',') };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url({ typ: 'JWT', alg: 'ES256', x5c: [opts.certDer.toString('base64')] });
    const claims = b64url({
      iss: opts.issuer,
      sub: opts.username,
      aud: opts.service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    });
    const sig = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return `${header}.${claims}.${sig}`;
  };
  const requests: TokenServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    const authorized = req.headers.authorization === expected;
    requests.push({ scope: u.searchParams.get('scope'), service: u.searchParams.get('service'), authorized });
    if (!authorized) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: issue(u.searchParams.get('scope') ?? ''), expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { realm: `http://${host}/token`, host, requests, issue, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('bearer-token auth against the real registry (auth: token)', () => {
  let reg: TestRegistry;
  let tokens: TokenServer;
  let dir: string;
  let image: string;
  let digest: string;
  const service = 'gg-test-registry';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gg-token-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=gg-token-signer',
        '-days',
        '2',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const certDer = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    tokens = await startTokenServer({
      keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
      certDer,
      issuer: 'gg-token-issuer',
      service,
      username: 'ci',
      password: 's3cret',
    });
    reg = await startTestRegistry({ tokenAuth: { realm: tokens.realm, service, issuer: 'gg-token-issuer', rootCertBundlePem: certPem } });
    const push = { authorization: `Bearer ${tokens.issue('repository:org/private:pull,push')}` };
    const img = await pushTestImage(reg.url, 'org/private', push);
    image = img.image;
    digest = img.digest;
    tokens.requests.length = 0;
  });
  afterAll(async () => {
    await reg?.stop();
    await tokens?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows the WWW-Authenticate challenge: basic credentials at the realm, bearer token at the registry, cached per scope', async () => {
    const c = createRegistryClient({
      insecureHosts: [reg.url, tokens.host],
      credentials: { [reg.url]: { username: 'ci', password: 's3cret' } },
      tokenRealms: { [reg.url]: [tokens.realm] },
    });
    const m = await c.getManifest(image, digest);
    expect(m.digest).toBe(digest);
    expect(tokens.requests).toEqual([{ scope: 'repository:org/private:pull', service, authorized: true }]);
    // The cached token is sent up front: no second token request, for manifests or blobs of the same repository.
    await c.getManifest(image, 'latest');
    const layer = (m.json['layers'] as Array<{ digest: string }>)[0]!;
    await c.getBlob(image, layer.digest);
    expect(tokens.requests).toHaveLength(1);
    tokens.requests.length = 0;
  });

  it('anonymous and wrong credentials are refused as REGISTRY_UNAUTHORIZED (not transient)', async () => {
    const anon = createRegistryClient({ insecureHosts: [reg.url, tokens.host] });
    expect(await caught(anon.getManifest(image, digest))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', transient: false });
    const wrong = createRegistryClient({
      insecureHosts: [reg.url, tokens.host],
      credentials: { [reg.url]: { username: 'ci', password: 'nope' } },
      tokenRealms: { [reg.url]: [tokens.realm] },
    });
    expect(await caught(wrong.getManifest(image, digest))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', transient: false });
    tokens.requests.length = 0;
  });

  it('credentials are not sent to a realm over plain http unless that host is listed as insecure', async () => {
    const c = createRegistryClient({ insecureHosts: [reg.url], credentials: { [reg.url]: { username: 'ci', password: 's3cret' } } });
    expect(await caught(c.getManifest(image, digest))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
    expect(tokens.requests).toHaveLength(0);
  });

  it('a configured token is sent as is; the token service is not asked', async () => {
    const token = tokens.issue('repository:org/private:pull');
    const c = createRegistryClient({ insecureHosts: [reg.url, tokens.host], credentials: { [reg.url]: { token } } });
    expect((await c.getManifest(image, digest)).digest).toBe(digest);
    expect(tokens.requests).toHaveLength(0);
    const bad = createRegistryClient({ insecureHosts: [reg.url, tokens.host], credentials: { [reg.url]: { token: 'not-a-token' } } });
    expect(await caught(bad.getManifest(image, digest))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
  });

  it('a token for another repository does not open this one (the registry checks the scope)', async () => {
    const token = tokens.issue('repository:org/other:pull');
    const c = createRegistryClient({ insecureHosts: [reg.url, tokens.host], credentials: { [reg.url]: { token } } });
    expect(await caught(c.getManifest(image, digest))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
  });

  it('a token whose signature does not verify is refused by the registry', async () => {
    const other = createHash('sha256').update('x').digest('hex');
    const forged = tokens.issue('repository:org/private:pull').replace(/\.[^.]+$/, `.${Buffer.from(other, 'hex').toString('base64url')}`);
    const c = createRegistryClient({ insecureHosts: [reg.url, tokens.host], credentials: { [reg.url]: { token: forged } } });
    expect(await caught(c.getManifest(image, digest))).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
  });
});

// Issue #17 point 5: the registry's credentials go only to the registry (and a token service configured for it). The
// attacker controls where a redirect leads (a compromised blob store, an open redirect on the registry) and the
// challenge that host sends back; a recording loopback server on another origin plays that host.
describe('credentials never follow a redirect to another origin', () => {
  interface Recorder {
    origin: string;
    host: string;
    seen: Array<{ path: string; authorization: string | undefined }>;
    close(): Promise<void>;
  }
  async function startServer(handler: (req: IncomingMessage, res: ServerResponse, self: Recorder) => void): Promise<Recorder> {
    const self: Recorder = { origin: '', host: '', seen: [], close: async () => undefined };
    const server: Server = createServer((req, res) => {
      self.seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
      handler(req, res, self);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    self.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    self.origin = `http://${self.host}`;
    self.close = () => new Promise<void>((r) => server.close(() => r()));
    return self;
  }
  const BASIC = `Basic ${Buffer.from('ci:s3cret').toString('base64')}`;
  let evil: Recorder;
  let registry: Recorder;
  beforeAll(async () => {
    // The other origin: answers every request with a challenge whose realm is itself, and records what it receives.
    evil = await startServer((req, res, self) => {
      if ((req.url ?? '').startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"stolen"}');
        return;
      }
      res
        .writeHead(401, { 'www-authenticate': `Bearer realm="${self.origin}/token",service="evil",scope="repository:org/app:pull"` })
        .end();
    });
    // The registry: redirects blob downloads to the other origin; its own challenges name a foreign realm when asked.
    registry = await startServer((req, res) => {
      const url = req.url ?? '';
      if (url.includes('/blobs/')) {
        res.writeHead(307, { location: `${evil.origin}/storage${url}` }).end();
        return;
      }
      if (url.includes('/manifests/foreign-realm')) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${evil.origin}/token",service="evil"` }).end();
        return;
      }
      res.writeHead(404).end();
    });
  });
  afterAll(async () => {
    await evil?.close();
    await registry?.close();
  });
  const client = (tokenRealms?: Record<string, string[]>) =>
    createRegistryClient({
      insecureHosts: [registry.host, evil.host],
      credentials: { [registry.host]: { username: 'ci', password: 's3cret' } },
      ...(tokenRealms === undefined ? {} : { tokenRealms }),
    });

  it('a 401 received after a cross-origin redirect is not answered: the redirect target gets no credentials', async () => {
    evil.seen.length = 0;
    const e = await caught(client().getBlob(`${registry.host}/org/app`, `sha256:${'4'.repeat(64)}`));
    expect(e).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', transient: false });
    expect(evil.seen.length).toBeGreaterThan(0);
    expect(evil.seen.filter((r) => r.authorization !== undefined)).toEqual([]);
    expect(evil.seen.filter((r) => r.path.startsWith('/token'))).toEqual([]);
  });

  it("the registry's own challenge naming a realm on another origin gets no credentials unless that token service is configured", async () => {
    evil.seen.length = 0;
    const e = await caught(client().getManifest(`${registry.host}/org/app`, 'foreign-realm'));
    expect(e).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
    expect(e.message).toContain('configured token service');
    expect(evil.seen).toEqual([]);
    // Configured (as Docker Hub's auth.docker.io is built in): the token service is asked with the credentials.
    await caught(client({ [registry.host]: [evil.origin] }).getManifest(`${registry.host}/org/app`, 'foreign-realm'));
    expect(evil.seen[0]).toMatchObject({ authorization: BASIC });
    expect(evil.seen[0]!.path).toMatch(/^\/token\?/);
  });
});
