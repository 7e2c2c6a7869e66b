// Pieces the whole-pipeline benchmarks (e2e, soak, fan-out, receiver, replicated) build their runs from.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoApplication } from '@gitops-gate/k8s-sandbox';
import { startStack } from '@gitops-gate/local-stack';
import { pushPayload, signBody } from '@gitops-gate/testing';

/**
 * What the sandbox API server is seeded with: one demo Application per `{ name, branch }` of `repoUrl` in `namespace`,
 * and the policy trusting `allowedSignersLine` for them.
 */
export function benchSeed({ namespace, repoUrl, apps, policyName, allowedSignersLine }) {
  return [
    ...apps.map(({ name, branch }) => demoApplication({ name, namespace, repoURL: repoUrl, branch })),
    sshSignerPolicy({ name: policyName, namespace, repoUrl, allowedSignersLine }),
  ];
}

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

/** Sum of the samples of metric `name` (optionally only lines containing `labels`) on a service's /metrics. */
export async function metricValue(port, name, labels) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && (!labels || line.includes(labels))) sum += Number(line.split(' ').pop());
  return sum;
}

/** A function counting the jobs still in the verify and gate queues (waiting, active, prioritized, delayed). */
export function queueBacklog(client, queuePrefix) {
  const keys = ['verify', 'gate'].flatMap((q) => ['wait', 'active', 'prioritized', 'delayed'].map((l) => `${queuePrefix}:${q}:${l}`));
  return async () => {
    let n = 0;
    for (const k of keys) {
      const type = await client.type(k);
      n += type === 'list' ? await client.llen(k) : type === 'zset' ? await client.zcard(k) : 0;
    }
    return n;
  };
}

/**
 * The local stack as the pipeline benchmarks run it: one gate, warn-level logs, and `repoUrl` fetched from the bare
 * repository `remote` on disk. Every other startStack option passes through.
 */
export function startBenchStack({ repoUrl, remote, ...options }) {
  return startStack({ urlRewrites: { [repoUrl]: `file://${remote}` }, gates: 1, logLevel: 'warn', ...options });
}

/** Unique, short request nonces for the load generators (one per round). */
export function nonceSource() {
  let n = 0;
  return () => `${Date.now().toString(36)}-${(n++).toString(36)}`;
}
