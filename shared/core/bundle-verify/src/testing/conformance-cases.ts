// Loads the sigstore-conformance bundle-verify cases (read-only fixtures beside the project, used in place).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const CONFORMANCE_DIR = fileURLToPath(
  new URL('../../../../../../shared/fixtures/sigstore-conformance/bundle-verify/', import.meta.url),
);

// Defaults documented in the suite's README.
export const DEFAULT_IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
export const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com';

export interface ConformanceCase {
  name: string;
  dir: string;
  expectOk: boolean;
  /** Raw bundle text (one case is deliberately malformed JSON). */
  bundleText: string;
  bundlePath: string;
  artifact: Buffer;
  artifactPath: string;
  identity: string;
  issuer: string;
  keyPem?: string;
  keyPath?: string;
  /** Parsed custom trusted root, when the case ships one. */
  trustedRoot?: object;
  trustedRootPath?: string;
}

function readOpt(dir: string, f: string): string | undefined {
  const p = join(dir, f);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
}

export function loadConformanceCases(): ConformanceCase[] {
  return readdirSync(CONFORMANCE_DIR)
    .filter((n) => statSync(join(CONFORMANCE_DIR, n)).isDirectory())
    .sort()
    .map((name) => {
      const dir = join(CONFORMANCE_DIR, name);
      const artifactPath = existsSync(join(dir, 'artifact')) ? join(dir, 'artifact') : join(CONFORMANCE_DIR, 'a.txt');
      const c: ConformanceCase = {
        name,
        dir,
        expectOk: !name.endsWith('_fail'),
        bundlePath: join(dir, 'bundle.sigstore.json'),
        bundleText: readFileSync(join(dir, 'bundle.sigstore.json'), 'utf8'),
        artifact: readFileSync(artifactPath),
        artifactPath,
        identity: readOpt(dir, 'identity')?.trim() ?? DEFAULT_IDENTITY,
        issuer: readOpt(dir, 'issuer')?.trim() ?? DEFAULT_ISSUER,
      };
      const key = readOpt(dir, 'key.pub');
      if (key !== undefined) {
        c.keyPem = key;
        c.keyPath = join(dir, 'key.pub');
      }
      const root = readOpt(dir, 'trusted_root.json');
      if (root !== undefined) {
        c.trustedRoot = JSON.parse(root) as object;
        c.trustedRootPath = join(dir, 'trusted_root.json');
      }
      return c;
    });
}
