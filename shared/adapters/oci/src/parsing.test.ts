import { describe, expect, it } from 'vitest';
import { OciError } from './errors.js';
import { parseImageName, parseSha256Digest } from './reference.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

describe('image names', () => {
  it.each([
    ['ghcr.io/org/app', { host: 'ghcr.io', apiHost: 'ghcr.io', repository: 'org/app', name: 'ghcr.io/org/app' }],
    ['GHCR.io/org/app', { host: 'ghcr.io', repository: 'org/app' }],
    ['localhost:5000/x', { host: 'localhost:5000', repository: 'x' }],
    ['localhost/x/y', { host: 'localhost', repository: 'x/y' }],
    ['127.0.0.1:5000/org/app', { host: '127.0.0.1:5000', repository: 'org/app' }],
    ['nginx', { host: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/nginx', name: 'docker.io/library/nginx' }],
    ['org/app', { host: 'docker.io', repository: 'org/app' }],
    ['docker.io/nginx', { host: 'docker.io', repository: 'library/nginx' }],
    ['index.docker.io/org/app', { host: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'org/app' }],
    ['registry.example.com/a/b/c_d/e__f/g-h', { repository: 'a/b/c_d/e__f/g-h' }],
  ])('%s', (image, expected) => {
    expect(parseImageName(image)).toMatchObject(expected);
  });

  it.each([
    '',
    'ghcr.io/org/app:latest',
    'ghcr.io/org/app@sha256:' + 'a'.repeat(64),
    'ghcr.io/Org/app',
    'ghcr.io/org//app',
    'ghcr.io/org/app/',
    'ghcr.io/-org/app',
    'bad host!/x',
    'a'.repeat(256),
  ])('rejects %j', (image) => {
    expect(() => parseImageName(image)).toThrow(OciError);
  });

  it('digests are sha256 with 64 lower-case hex digits', () => {
    expect(parseSha256Digest(`sha256:${'a'.repeat(64)}`)).toBe('a'.repeat(64));
    for (const d of [`sha256:${'A'.repeat(64)}`, `sha512:${'a'.repeat(128)}`, `sha256:${'a'.repeat(63)}`, 'sha256-' + 'a'.repeat(64)]) {
      expect(() => parseSha256Digest(d)).toThrow(OciError);
    }
  });
});

describe('WWW-Authenticate', () => {
  it('parses a registry bearer challenge', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/app:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:org/app:pull' } },
    ]);
  });

  it('parses several challenges, unquoted values and escapes', () => {
    expect(parseWwwAuthenticate('Basic realm="a \\"b\\"", Bearer realm=https://x/t, error=invalid_token')).toEqual([
      { scheme: 'basic', params: { realm: 'a "b"' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', error: 'invalid_token' } },
    ]);
  });

  it('survives garbage', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
    expect(parseWwwAuthenticate('Negotiate abc==, Basic realm=x')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });
});
