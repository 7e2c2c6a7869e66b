// The one provisioning step of `npm start`, `npm test` and `npm run demo` (their pre-hooks) and so of `.ci/run`:
// every system package the project needs is checked; missing ones are installed with apt-get when running as root
// on a Debian-like machine, and otherwise named exactly, with the command to install them, and the step fails.
//
//   node scripts/provision.mjs [--check]     (--check: report only, never install)
//
// Plain JavaScript without dependencies: it runs before `npm run build` and on whichever Node npm was started with.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * What the project needs: the Debian package and how to tell it is there (a command on PATH, or a file — Debian's
 * docker-registry and chromium live at fixed paths and the tests use those).
 */
export const REQUIREMENTS = [
  { pkg: 'redis-server', command: 'redis-server', why: 'queues, de-duplication, audit (npm start, tests)' },
  { pkg: 'redis-sentinel', command: 'redis-sentinel', why: 'the Sentinel failover tests' },
  { pkg: 'git', command: 'git', why: 'fetching and verifying commits' },
  { pkg: 'openssh-client', command: 'ssh-keygen', why: 'SSH signature fixtures and checks' },
  { pkg: 'gnupg', command: 'gpg', why: 'GPG signature fixtures' },
  // Debian packages kubectl as kubernetes-client (what .ci/run installed before this step existed).
  { pkg: 'kubernetes-client', command: 'kubectl', why: 'kubectl against the sandbox API server and deploy/ checks' },
  { pkg: 'docker-registry', file: '/usr/bin/docker-registry', why: 'the OCI registry of the image tests' },
  { pkg: 'chromium', file: '/usr/bin/chromium', why: 'the /ui browser tests' },
  { pkg: 'openssl', command: 'openssl', why: 'TLS fixtures' },
];

/** The machine as the step sees it; tests inject their own. */
export function systemProbes() {
  return {
    hasCommand(cmd) {
      try {
        execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    },
    hasFile(path) {
      try {
        accessSync(path, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    isRoot: () => process.getuid?.() === 0,
    hasApt() {
      return this.hasCommand('apt-get');
    },
  };
}

/** Debian packages among `requirements` that the machine lacks. */
export function missingPackages(probes, requirements = REQUIREMENTS) {
  return requirements.filter((r) => (r.file ? !probes.hasFile(r.file) : !probes.hasCommand(r.command))).map((r) => r.pkg);
}

/**
 * The decision, pure: nothing missing → ok; missing and root with apt-get (and not --check) → install them;
 * otherwise fail with a message that names every missing package and the exact command.
 */
export function decide({ missing, isRoot, hasApt, checkOnly = false }) {
  if (missing.length === 0) return { action: 'ok', message: 'provision: every system package is installed' };
  const list = missing.join(' ');
  const needs = missing.map((p) => `  ${p}: ${REQUIREMENTS.find((r) => r.pkg === p)?.why ?? ''}`).join('\n');
  if (isRoot && hasApt && !checkOnly) return { action: 'install', packages: missing, message: `provision: installing ${list} (apt-get)` };
  const how = hasApt
    ? `sudo apt-get update && sudo apt-get install -y ${list}`
    : `install the Debian/Ubuntu packages ${list} (or their equivalents) with your package manager`;
  const reason = checkOnly ? '' : !hasApt ? ' (no apt-get on this machine)' : ' (not running as root, so not installing them)';
  return {
    action: 'fail',
    packages: missing,
    message: `provision: missing system packages${reason}:\n${needs}\nInstall them with:\n  ${how}`,
  };
}

/** Runs the step; returns the exit code. `run` executes a command (tests inject one). */
export function provision({
  probes = systemProbes(),
  run = defaultRun,
  log = (l) => process.stderr.write(`${l}\n`),
  checkOnly = false,
} = {}) {
  const missing = missingPackages(probes);
  const d = decide({ missing, isRoot: probes.isRoot(), hasApt: probes.hasApt(), checkOnly });
  if (d.action === 'ok') return 0;
  log(d.message);
  if (d.action === 'fail') return 1;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], env);
  run('apt-get', ['install', '-y', '-qq', ...d.packages], env);
  // Installed is what the probes now see, not what apt-get said.
  const still = missingPackages(probes);
  if (still.length > 0) {
    log(`provision: still missing after apt-get: ${still.join(' ')}`);
    return 1;
  }
  log('provision: installed');
  return 0;
}

function defaultRun(cmd, args, env) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = provision({ checkOnly: process.argv.includes('--check') });
}
