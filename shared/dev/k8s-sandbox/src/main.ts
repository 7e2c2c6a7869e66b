#!/usr/bin/env node
/**
 * Standalone sandbox kube-apiserver:
 *   node dist/main.js [--host H] [--port N] [--token T] [--kubeconfig PATH] [--namespace NS] [--seed FILE.yaml|json]...
 *                     [--production-watches]   (75 s resume history, every watch ended after 30–60 min, as kube-apiserver)
 * Prints its URL and the kubeconfig path, then serves until SIGINT/SIGTERM.
 */
import { SandboxError } from './errors.js';
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadAll } from 'js-yaml';
import { createSandboxApiServer, PRODUCTION_WATCHES } from './server.js';

/** Accepts a YAML stream (`---`-separated), a JSON object, a JSON array, or a `kind: List` with `items`. */
export function parseSeed(text: string): object[] {
  const docs = loadAll(text).filter((d): d is object => d !== null && typeof d === 'object');
  const out: object[] = [];
  for (const d of docs) {
    if (Array.isArray(d)) out.push(...(d as object[]));
    else if (
      typeof (d as { kind?: unknown }).kind === 'string' &&
      (d as { kind: string }).kind.endsWith('List') &&
      Array.isArray((d as { items?: unknown }).items)
    ) {
      out.push(...(d as { items: object[] }).items);
    } else out.push(d);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      token: { type: 'string' },
      kubeconfig: { type: 'string', default: join(tmpdir(), 'gitops-gate-sandbox.kubeconfig') },
      namespace: { type: 'string' },
      seed: { type: 'string', multiple: true },
      'production-watches': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new SandboxError('INVALID_OPTION', `--port must be 0..65535, got ${values.port}`);
  const seed: object[] = [];
  for (const file of values.seed ?? []) seed.push(...parseSeed(await readFile(file, 'utf8')));
  const server = await createSandboxApiServer({
    host: values.host,
    port,
    seed,
    ...(values.token ? { token: values.token } : {}),
    ...(values['production-watches'] ? PRODUCTION_WATCHES : {}),
  });
  const kubeconfig = values.kubeconfig;
  await server.writeKubeconfig(kubeconfig, values.namespace ? { namespace: values.namespace } : {});
  process.stdout.write(`sandbox kube-apiserver listening on ${server.url}\nkubeconfig: ${kubeconfig}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down\n`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

// Only run when executed directly, so tests can import parseSeed.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
