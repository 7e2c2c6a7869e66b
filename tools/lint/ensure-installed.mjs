// Installs the standalone lint toolchain (tools/lint, not a workspace: typescript-eslint needs TypeScript 5's
// compiler API) when it is missing or differs from its lockfile, so a fresh `npm install && npm test` lints.
// Does nothing, and needs no network, when the installed versions already match the lockfile.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));

function installedMatchesLock() {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    // Every top-level package of the lockfile must be there in its locked version (nested ones come with them).
    if (!path.startsWith('node_modules/') || path.split('node_modules/').length !== 2 || entry.dev !== true) continue;
    const manifest = join(dir, path, 'package.json');
    if (!existsSync(manifest)) return false;
    if (JSON.parse(readFileSync(manifest, 'utf8')).version !== entry.version) return false;
  }
  return existsSync(join(dir, 'node_modules', '.bin', 'eslint'));
}

if (!installedMatchesLock()) {
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm ? [process.execPath, [npm]] : ['npm', []];
  execFileSync(cmd, [...args, 'ci', '--prefix', dir, '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
