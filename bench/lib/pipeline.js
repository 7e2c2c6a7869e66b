// Pieces the whole-pipeline benchmarks (e2e, soak, fan-out, receiver, replicated) build their runs from.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pushPayload, signBody } from '@gitops-gate/testing';

/** An Enforce GatePolicy for every branch of `repoUrl` in `namespace`, trusting one SSH allowed_signers line. */
export function sshSignerPolicy({ name, namespace, repoUrl, allowedSignersLine }) {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name, namespace },
    spec: {
      mode: 'Enforce',
      selector: { namespaces: [namespace] },
      repository: repoUrl.replace(/\.git$/, ''),
      branches: ['*'],
      commits: { ssh: { allowedSigners: `${allowedSignersLine}\n` } },
    },
  };
}

/**
 * `count` distinct push deliveries (random SHAs) signed with `secret`: `pool` ({ sig, body }) for in-process senders,
 * and `poolFile` (`<dir>/pool.tsv`, `signature<TAB>body` lines) for the external load generators.
 */
export function writeSignedPushPool(dir, secret, count = 2000) {
  const pool = [];
  for (let i = 0; i < count; i++) {
    const body = JSON.stringify(
      pushPayload({
        repoUrl: 'https://github.com/org/app.git',
        fullName: 'org/app',
        after: randomBytes(20).toString('hex'),
        before: randomBytes(20).toString('hex'),
      }),
    );
    pool.push({ sig: signBody(secret, body), body });
  }
  const poolFile = join(dir, 'pool.tsv');
  writeFileSync(poolFile, pool.map((p) => `${p.sig}\t${p.body}`).join('\n') + '\n');
  return { pool, poolFile };
}
