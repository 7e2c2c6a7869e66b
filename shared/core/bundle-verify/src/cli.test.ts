import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runConformanceCli } from './index.js';
import { loadConformanceCases } from './testing/conformance-cases.js';
import type { ConformanceCase } from './testing/conformance-cases.js';

const cases = loadConformanceCases();

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runConformanceCli(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, out, err };
}

function argsFor(c: ConformanceCase, artifact: string): string[] {
  const a = ['verify-bundle', '--bundle', c.bundlePath];
  if (c.keyPath !== undefined) a.push('--key', c.keyPath);
  else a.push('--certificate-identity', c.identity, '--certificate-oidc-issuer', c.issuer);
  if (c.trustedRootPath !== undefined) a.push('--trusted-root', c.trustedRootPath);
  a.push(artifact);
  return a;
}

describe('conformance verify-bundle protocol', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const r = await cli(argsFor(c, c.artifactPath));
    expect(r.code === 0, r.err.join('\n')).toBe(c.expectOk);
    if (!c.expectOk) {
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(/^rejected \([A-Z_]+\): \S/);
      expect(r.err[0]).not.toContain('\n');
    }
  });

  it('accepts sha256:<hex> artifacts', async () => {
    for (const name of ['happy-path-v0.3', 'rekor2-happy-path', 'happy-path-intoto-in-dsse-v3', 'managed-key-happy-path']) {
      const c = cases.find((x) => x.name === name)!;
      const hex = createHash('sha256').update(c.artifact).digest('hex');
      expect((await cli(argsFor(c, `sha256:${hex}`))).code, name).toBe(0);
      expect((await cli(argsFor(c, `sha256:${'ab'.repeat(32)}`))).code, name).toBe(1);
    }
  });

  it('usage errors exit 2 with one line', async () => {
    const c = cases.find((x) => x.name === 'happy-path-v0.3')!;
    const bad: string[][] = [
      [],
      ['sign-bundle'],
      ['verify-bundle', '--bundle', c.bundlePath, c.artifactPath],
      ['verify-bundle', '--bundle', c.bundlePath, '--certificate-identity', 'x', c.artifactPath],
      [
        'verify-bundle',
        '--bundle',
        c.bundlePath,
        '--key',
        'k',
        '--certificate-identity',
        'x',
        '--certificate-oidc-issuer',
        'y',
        c.artifactPath,
      ],
      ['verify-bundle', '--bundle', c.bundlePath, '--certificate-identity', 'x', '--certificate-oidc-issuer', 'y'],
      ['verify-bundle', '--bundle', c.bundlePath, '--unknown', 'x', c.artifactPath],
      ['verify-bundle', '--bundle'],
    ];
    for (const args of bad) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toHaveLength(1);
    }
  });

  it('missing files are a rejection, not a crash', async () => {
    const c = cases.find((x) => x.name === 'happy-path-v0.3')!;
    const r = await cli([
      'verify-bundle',
      '--bundle',
      '/nonexistent/bundle.json',
      '--certificate-identity',
      c.identity,
      '--certificate-oidc-issuer',
      c.issuer,
      c.artifactPath,
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
  });
});
