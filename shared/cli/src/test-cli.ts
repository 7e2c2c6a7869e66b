/** Test helpers for the CLI's tests: run it in-process, and make audit checkpoint keys. */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSigningKey, type CheckpointSigner } from '@gitops-gate/gate-core';
import { main } from './main.js';

/** Runs `gitops-gate <argv>` in this process with `env`, returning its exit code and what it wrote. */
export async function runCli(argv: string[], env: Record<string, string | undefined>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env,
  });
  return { code, out, err };
}

/** A fresh Ed25519 checkpoint signer, and a file in `dir` holding its note verifier key as /ui shows it. */
export function newCheckpointKey(dir: string, name: string): { signer: CheckpointSigner; pubFile: string } {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const signer = parseSigningKey(pem, name);
  const pubFile = join(dir, `${name}-${randomUUID()}.pub`);
  writeFileSync(pubFile, `${signer.verifier.text}\n`);
  return { signer, pubFile };
}
