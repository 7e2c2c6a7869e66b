/**
 * gitsign verification throughput over the public-good fixtures (offline, embedded Rekor entries).
 *
 *   cd shared/core/commit-verify && npx tsc -p tsconfig.json && node bench/gitsign-bench.ts [seconds]
 *
 * Imports the compiled dist/ (Node's type stripping does not rewrite the sources' `.js` import specifiers).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommit } from '../dist/commit.js';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { verifyGitsignCommitSignature } from '../dist/gitsign/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const fixtures = join(here, '../../../../../shared/fixtures/git-commits');
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as Record<
  string,
  { kind: string; valid: unknown; san?: string; issuer?: string }
>;
const valid = Object.entries(manifest).filter(([, m]) => m.kind === 'gitsign-offline' && m.valid === true);
const commits = valid.map(([sha]) => parseCommit(readFileSync(join(fixtures, 'gitsign-offline', `${sha}.commit`))));
const identities = [...new Set(valid.map(([, m]) => `${m.san}\n${m.issuer}`))].map((s) => {
  const [identity, issuer] = s.split('\n') as [string, string];
  return { identity, issuer };
});

let t = process.hrtime.bigint();
const trust = createBundleTrust();
console.log(`createBundleTrust (public-good): ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(2)} ms`);

async function once(): Promise<void> {
  for (const c of commits) {
    const r = await verifyGitsignCommitSignature({ payload: c.payload, signature: c.signature!, trust, identities });
    if (!r.ok) throw new Error(`fixture failed to verify: ${r.code} ${r.reason}`);
  }
}

await once(); // warm-up
const seconds = Number(process.argv[2] ?? 5);
let n = 0;
t = process.hrtime.bigint();
const deadline = t + BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() < deadline) {
  await once();
  n += commits.length;
}
const elapsed = Number(process.hrtime.bigint() - t) / 1e9;
console.log(
  `${n} verifications of ${commits.length} fixtures in ${elapsed.toFixed(2)} s: ${(n / elapsed).toFixed(0)} verifications/s (${((elapsed / n) * 1e3).toFixed(3)} ms each, single thread)`,
);
