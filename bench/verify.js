// Row 4: commit signature verification per method, per core — @gitops-gate/commit-verify `verifyCommit` in this process
// (one after another: one core) against spawning `git verify-commit` (one after another) on the same fixture commits
// (../shared/fixtures/git-commits, valid ones only). Both sides must accept every commit, or the run fails.
// Rounds alternate ours / git so that other load on the machine hits both alike.
//   SSH:     git -c gpg.ssh.allowedSignersFile=ssh/allowed_signers verify-commit   (git runs ssh-keygen -Y …)
//   SSH sk / certificate (rows 4a-sk, 4a-cert): 12 commits made here, signed by a software sk-ssh-ed25519 security key,
//            and by an Ed25519 key through an OpenSSH user certificate issued by `ssh-keygen -s` (cert-authority line).
//   GPG:     git verify-commit with a temporary GNUPGHOME holding pgp/github-web-flow-2017.asc   (git runs gpg)
//   gitsign: git needs the gitsign binary as gpg.x509.program; when it is not installed, only ours is measured.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { verifyCommit } from '@gitops-gate/commit-verify';
import { compilePolicy } from '@gitops-gate/policy';
import { createSshKey, makeCommit, writeObject } from './lib/commits.js';
import { FIXTURES, log } from './lib/util.js';

const run = promisify(execFile);
const GIT_COMMITS = join(FIXTURES, 'git-commits');

function which(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

// Wall time and this process's CPU time (user + system): on a shared machine the wall rate moves with other load,
// the rate per CPU-second is what one core of ours does (git's work runs in child processes and is not in it).
async function timed(fn, ms) {
  let n = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const end = t0 + ms;
  while (performance.now() < end) n += await fn();
  const c = process.cpuUsage(c0);
  return { n, ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}

export async function benchVerify({ roundMs = 1000, rounds = 3 } = {}) {
  const manifest = JSON.parse(readFileSync(join(GIT_COMMITS, 'manifest.json'), 'utf8'));
  const valid = (kind) => Object.entries(manifest).filter(([, m]) => m.kind === kind && m.valid === true);
  const load = (dir, sha) => readFileSync(join(GIT_COMMITS, dir, `${sha}.commit`));
  const work = mkdtempSync(join(tmpdir(), 'gg-bench-verify-'));
  const repo = join(work, 'repo.git');
  execFileSync('git', ['init', '--quiet', '--bare', repo]);
  const gnupg = join(work, 'gnupg');
  execFileSync('mkdir', ['-m', '700', gnupg]);
  const gitEnv = { PATH: process.env.PATH, HOME: work, GIT_CONFIG_NOSYSTEM: '1', GNUPGHOME: gnupg, LC_ALL: 'C' };
  const webFlowKey = readFileSync(join(GIT_COMMITS, 'pgp', 'github-web-flow-2017.asc'), 'utf8');
  execFileSync('gpg', ['--batch', '--quiet', '--import'], { env: gitEnv, input: webFlowKey, stdio: ['pipe', 'ignore', 'ignore'] });
  const trust = createBundleTrust();

  const policy = (name, commits) =>
    compilePolicy({
      apiVersion: 'gitops-gate.io/v1alpha1',
      kind: 'GatePolicy',
      metadata: { name },
      spec: { repository: '*', branches: ['*'], commits },
    });
  const gitsignIds = [...new Set(valid('gitsign-offline').map(([, m]) => `${m.san}\n${m.issuer}`))].map((s) => ({
    identity: s.split('\n')[0],
    issuer: s.split('\n')[1],
  }));
  // Security-key and certificate signatures are not in the fixtures: make 12 commits of each here.
  const sshKeygen = which('ssh-keygen');
  const made = (name, key, signers) => {
    const file = join(work, `allowed_signers.${name}`);
    writeFileSync(file, signers);
    const commits = Array.from({ length: 12 }, (_, i) => makeCommit(repo, { time: 1_700_000_000 + i, message: `${name} ${i}`, key }));
    return { commits, file, signers };
  };
  const skKey = createSshKey({ sk: true });
  const sk = made('sk', skKey, `${skKey.allowedSignersLine('dev@example.com')}\n`);
  let cert;
  if (sshKeygen) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'ca')]);
    const user = createSshKey();
    writeFileSync(join(work, 'user.pub'), `${user.publicLine}\n`);
    execFileSync('ssh-keygen', [
      '-q',
      '-s',
      join(work, 'ca'),
      '-I',
      'bench-dev',
      '-n',
      'dev@example.com',
      '-z',
      '1',
      join(work, 'user.pub'),
    ]);
    const certBlob = Buffer.from(readFileSync(join(work, 'user-cert.pub'), 'utf8').split(' ')[1], 'base64');
    const caLine = readFileSync(join(work, 'ca.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    cert = made('cert', user.withCertificate(certBlob), `dev@example.com cert-authority ${caLine}\n`);
  }
  const madeMethod = async (row, name, m) => ({
    row,
    name,
    commits: m.commits,
    policy: await policy(name, { ssh: { allowedSigners: m.signers } }),
    git: sshKeygen ? ['-c', `gpg.ssh.allowedSignersFile=${m.file}`] : undefined,
    baseline: 'git verify-commit (ssh-keygen)',
  });
  const methods = [
    {
      row: '4a',
      name: 'SSH',
      commits: valid('ssh').map(([sha]) => ({ sha, raw: load('ssh', sha) })),
      policy: await policy('ssh', { ssh: { allowedSigners: readFileSync(join(GIT_COMMITS, 'ssh', 'allowed_signers'), 'utf8') } }),
      git: which('ssh-keygen') ? ['-c', `gpg.ssh.allowedSignersFile=${join(GIT_COMMITS, 'ssh', 'allowed_signers')}`] : undefined,
      baseline: 'git verify-commit (ssh-keygen)',
    },
    await madeMethod('4a-sk', 'SSH sk-ed25519 security key', sk),
    ...(cert ? [await madeMethod('4a-cert', 'SSH certificate (ed25519 key, ed25519 CA)', cert)] : []),
    {
      row: '4b',
      name: 'GPG',
      commits: valid('pgp').map(([sha]) => ({ sha, raw: load('pgp', sha) })),
      policy: await policy('gpg', { gpg: [{ fingerprint: valid('pgp')[0][1].fingerprint, publicKey: webFlowKey }] }),
      git: which('gpg') ? [] : undefined,
      baseline: 'git verify-commit (gpg)',
    },
    {
      row: '4c',
      name: 'gitsign',
      commits: valid('gitsign-offline').map(([sha]) => ({ sha, raw: load('gitsign-offline', sha) })),
      policy: await policy('gitsign', { gitsign: gitsignIds }),
      git: which('gitsign') ? ['-c', 'gpg.x509.program=gitsign', '-c', 'gpg.format=x509'] : undefined,
      baseline: 'git verify-commit (gitsign)',
    },
  ];

  const out = [];
  try {
    for (const m of methods) {
      for (const c of m.commits) writeObject(repo, 'commit', c.raw);
      const ours = async () => {
        for (const c of m.commits) {
          const v = await verifyCommit(c.raw, m.policy.commit, { expectedSha: c.sha, env: { trust } });
          if (!v.ok) throw new Error(`${m.name} ${c.sha}: ours rejected it: ${v.code} ${v.reason}`);
        }
        return m.commits.length;
      };
      let i = 0;
      const git = async () => {
        const c = m.commits[i++ % m.commits.length];
        // exits non-zero when the signature does not verify
        await run('git', ['-C', repo, ...m.git, 'verify-commit', c.sha], { env: gitEnv });
        return 1;
      };
      await ours(); // warm-up, and every commit must verify
      if (m.git) for (const _ of m.commits) await git();
      const tot = { ours: { n: 0, ms: 0, cpuMs: 0 }, git: { n: 0, ms: 0, cpuMs: 0 } };
      for (let r = 0; r < rounds; r++) {
        for (const who of r % 2 === 0 ? ['ours', 'git'] : ['git', 'ours']) {
          if (who === 'git' && !m.git) continue;
          const res = await timed(who === 'ours' ? ours : git, roundMs);
          tot[who].n += res.n;
          tot[who].ms += res.ms;
          tot[who].cpuMs += res.cpuMs;
        }
      }
      const oursRate = (tot.ours.n / tot.ours.ms) * 1000;
      const oursPerCpuSecond = (tot.ours.n / Math.max(1, tot.ours.cpuMs)) * 1000;
      const gitRate = m.git ? (tot.git.n / tot.git.ms) * 1000 : undefined;
      out.push({
        row: m.row,
        method: m.name,
        commits: m.commits.length,
        ours: oursRate,
        oursPerCpuSecond,
        git: gitRate,
        ratio: gitRate ? oursRate / gitRate : undefined,
        baseline: m.git ? m.baseline : `${m.baseline}: not installed`,
      });
      log(
        `verify ${m.name}: ours ${oursRate.toFixed(0)}/s (${(1000 / oursRate).toFixed(2)} ms each), git ${gitRate ? `${gitRate.toFixed(1)}/s (${(1000 / gitRate).toFixed(1)} ms each)` : 'n/a'}`,
      );
    }
    return out;
  } finally {
    spawnSync('gpgconf', ['--kill', 'all'], { env: gitEnv });
    rmSync(work, { recursive: true, force: true });
  }
}

/** shared/core/bundle-verify/bench/bundle-bench.ts as a child process: ours vs @sigstore/verify on fresh bundles. */
export async function benchBundles({ seconds = 6 } = {}) {
  const { REPO_ROOT } = await import('./lib/util.js');
  const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'shared/core/bundle-verify/bench/bundle-bench.ts'), String(seconds)], {
    cwd: REPO_ROOT,
    timeout: (seconds + 60) * 1000,
  });
  const rate = (label) => Number(new RegExp(`${label.replace(/[()+/@.]/g, '\\$&')}\\s+(\\d+) verifications/s`).exec(stdout)?.[1]);
  const ours = rate('@gitops-gate/bundle-verify verify()');
  const theirs = rate('@sigstore/verify pipeline (+fixes)');
  const theirsVerifyOnly = rate('@sigstore/verify Verifier.verify only');
  const bundles = Number(/^(\d+) passing conformance bundles/m.exec(stdout)?.[1]);
  log(`bundles: ours ${ours}/s, @sigstore/verify ${theirs}/s (Verifier.verify alone ${theirsVerifyOnly}/s)`);
  return { bundles, ours, theirs, theirsVerifyOnly, ratio: ours / theirs, ratioVerifyOnly: ours / theirsVerifyOnly };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchVerify());
  console.log(await benchBundles({ seconds: 4 }));
}
