/**
 * The provisioning step shared by npm start, npm test and .ci/run: its decisions with injected probes (no package
 * is installed by this test), and that every entry point runs it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decide, missingPackages, provision, REQUIREMENTS, type Probes } from '../../scripts/provision.mjs';

const ROOT = new URL('../../', import.meta.url);

/** A machine that has everything but `lacking` (Debian package names); `installs` simulates apt-get. */
function machine(lacking: string[], opts: { root: boolean; apt?: boolean }): Probes & { installed: string[] } {
  const gone = new Set(lacking);
  const installed: string[] = [];
  const present = (r: (typeof REQUIREMENTS)[number]) => !gone.has(r.pkg);
  return {
    installed,
    hasCommand: (cmd) => (cmd === 'apt-get' ? (opts.apt ?? true) : REQUIREMENTS.some((r) => r.command === cmd && present(r))),
    hasFile: (path) => REQUIREMENTS.some((r) => r.file === path && present(r)),
    isRoot: () => opts.root,
    hasApt: () => opts.apt ?? true,
  };
}

describe('scripts/provision.mjs', () => {
  it('checks every package the project needs', () => {
    expect(REQUIREMENTS.map((r) => r.pkg).sort()).toEqual([
      'chromium',
      'docker-registry',
      'git',
      'gnupg',
      'kubernetes-client',
      'openssh-client',
      'openssl',
      'redis-sentinel',
      'redis-server',
    ]);
    expect(missingPackages(machine([], { root: false }))).toEqual([]);
    expect(missingPackages(machine(['chromium', 'redis-sentinel'], { root: false }))).toEqual(['redis-sentinel', 'chromium']);
  });

  it('not root: names exactly what to install and fails, installing nothing', () => {
    const runs: string[][] = [];
    const lines: string[] = [];
    const code = provision({
      probes: machine(['redis-sentinel', 'docker-registry'], { root: false }),
      run: (c, a) => runs.push([c, ...a]),
      log: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(runs).toEqual([]);
    const text = lines.join('\n');
    expect(text).toContain('missing system packages (not running as root, so not installing them)');
    expect(text).toContain('redis-sentinel: the Sentinel failover tests');
    expect(text).toContain('sudo apt-get update && sudo apt-get install -y redis-sentinel docker-registry');
  });

  it('root with apt-get: installs exactly the missing ones, then checks again', () => {
    const m = machine(['redis-sentinel', 'chromium'], { root: true });
    const runs: string[][] = [];
    // The fake apt-get makes the packages appear, as the real one does.
    const probes: Probes = {
      ...m,
      hasCommand: (c) => runs.length >= 2 || m.hasCommand(c),
      hasFile: (p) => runs.length >= 2 || m.hasFile(p),
    };
    expect(provision({ probes, run: (c, a) => runs.push([c, ...a]), log: () => undefined })).toBe(0);
    expect(runs).toEqual([
      ['apt-get', 'update', '-qq'],
      ['apt-get', 'install', '-y', '-qq', 'redis-sentinel', 'chromium'],
    ]);
  });

  it('root, but apt-get did not deliver: fails closed', () => {
    const lines: string[] = [];
    expect(provision({ probes: machine(['chromium'], { root: true }), run: () => undefined, log: (l) => lines.push(l) })).toBe(1);
    expect(lines).toContain('provision: still missing after apt-get: chromium');
  });

  it('no apt-get, or --check: never installs, says what is missing', () => {
    expect(decide({ missing: ['git'], isRoot: true, hasApt: false })).toMatchObject({
      action: 'fail',
      message: expect.stringContaining('(no apt-get on this machine)'),
    });
    expect(decide({ missing: ['git'], isRoot: true, hasApt: true, checkOnly: true })).toMatchObject({ action: 'fail' });
    expect(decide({ missing: [], isRoot: false, hasApt: false })).toEqual({
      action: 'ok',
      message: 'provision: every system package is installed',
    });
  });

  it('npm start, npm test, npm run demo and .ci/run all go through it', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { scripts: Record<string, string> };
    for (const hook of ['prestart', 'pretest', 'predemo']) expect(pkg.scripts[hook], hook).toBe('node scripts/provision.mjs');
    const ci = readFileSync(new URL('.ci/run', ROOT), 'utf8');
    expect(ci).toContain('npm ci');
    expect(ci).toMatch(/^npm test$/m);
    expect(ci).not.toContain('apt-get');
  });
});
