// GPG commit verification throughput: in-process openpgp.js verifier vs spawning `gpg --verify` per commit (what
// `git verify-commit` does), over the 12 web-flow fixture commits.
//
// Run from the repository root (Node >= 22.18 runs TypeScript directly):
//   node shared/core/commit-verify/bench/gpg-bench.ts [seconds=3] [gpgRuns=60]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

// The sources import each other as `./x.js` (NodeNext style) while the files are `x.ts`: map one to the other, so the
// benchmark measures the sources without a build step.
registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (specifier.startsWith('.') && specifier.endsWith('.js')) return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      throw error;
    }
  },
});

const { parseCommit } = await import('../src/commit.js');
const { createGpgKeyring, verifyGpgCommitSignature } = await import('../src/gpg/index.js');

const seconds = Number(process.argv[2] ?? 3);
const gpgRuns = Number(process.argv[3] ?? 60);
const pgpDir = new URL('../../../../../shared/fixtures/git-commits/pgp/', import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(pgpDir, '..', 'manifest.json'), 'utf8')) as Record<string, { valid: unknown }>;
const keyText = readFileSync(join(pgpDir, 'github-web-flow-2017.asc'), 'utf8');
const commits = readdirSync(pgpDir)
  .filter((f) => f.endsWith('.commit') && manifest[f.slice(0, -7)]?.valid === true)
  .map((f) => {
    const p = parseCommit(readFileSync(join(pgpDir, f)));
    return { sha: f.slice(0, -7), payload: p.payload, signature: p.signature as string };
  });

let t = performance.now();
const keyring = await createGpgKeyring([keyText]);
const keyringMs = performance.now() - t;

// Warm-up, and a correctness check: every commit must verify, or the numbers mean nothing.
for (const c of commits) {
  const r = await verifyGpgCommitSignature({ payload: c.payload, signature: c.signature, keyring });
  if (!r.ok) throw new Error(`${c.sha} did not verify: ${r.code} ${r.reason}`);
}

let inProcess = 0;
t = performance.now();
const deadline = t + seconds * 1000;
while (performance.now() < deadline) {
  const c = commits[inProcess % commits.length]!;
  const r = await verifyGpgCommitSignature({ payload: c.payload, signature: c.signature, keyring });
  if (!r.ok) throw new Error(`${c.sha} did not verify during the run`);
  inProcess++;
}
const inProcessMs = performance.now() - t;

const home = mkdtempSync(join(tmpdir(), 'gpgbench-'));
const env = { ...process.env, GNUPGHOME: home };
let gpgMs: number;
try {
  if (spawnSync('gpg', ['--batch', '--import'], { env, input: keyText }).status !== 0) throw new Error('gpg --import failed');
  const files = commits.map((c) => {
    const sigFile = join(home, `${c.sha}.sig`);
    writeFileSync(sigFile, c.signature);
    return { sigFile, payload: c.payload };
  });
  t = performance.now();
  for (let i = 0; i < gpgRuns; i++) {
    const f = files[i % files.length]!;
    // As git runs it: status on a fd, detached signature file, payload on stdin.
    const r = spawnSync('gpg', ['--batch', '--status-fd=1', '--verify', f.sigFile, '-'], { env, input: f.payload, encoding: 'utf8' });
    if (!/\[GNUPG:\] VALIDSIG /.test(r.stdout)) throw new Error(`gpg did not verify: ${r.stderr}`);
  }
  gpgMs = performance.now() - t;
} finally {
  spawnSync('gpgconf', ['--kill', 'all'], { env });
  rmSync(home, { recursive: true, force: true });
}

const inProcessRate = (inProcess / inProcessMs) * 1000;
const gpgRate = (gpgRuns / gpgMs) * 1000;
console.log(`node ${process.version}, ${commits.length} web-flow fixture commits (RSA-2048/SHA-256)`);
console.log(`createGpgKeyring (1 key):        ${keyringMs.toFixed(1)} ms`);
console.log(
  `in-process verifyGpgCommitSignature: ${inProcessRate.toFixed(0)} verifications/s (${inProcess} in ${(inProcessMs / 1000).toFixed(2)} s, ${((inProcessMs / inProcess) * 1000).toFixed(0)} µs each)`,
);
console.log(
  `spawn gpg --verify per commit:       ${gpgRate.toFixed(1)} verifications/s (${gpgRuns} in ${(gpgMs / 1000).toFixed(2)} s, ${(gpgMs / gpgRuns).toFixed(1)} ms each)`,
);
console.log(`speed-up: ${(inProcessRate / gpgRate).toFixed(1)}x`);
