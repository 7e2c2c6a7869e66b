// The conformance suite's `verify-bundle` protocol, as our CLI exposes it:
//   verify-bundle --bundle FILE (--certificate-identity ID --certificate-oidc-issuer ISS | --key FILE)
//                 [--trusted-root FILE] ARTIFACT            (ARTIFACT: a file path or sha256:<hex>)
// Exit 0 = verified; 1 = rejected; 2 = usage error. Failures print one line on stderr.
import { readFile } from 'node:fs/promises';
import { createBundleTrust } from './trust.js';
import { createBundleVerifier } from './verifier.js';
import type { Artifact, SignerPolicy } from './verifier.js';

export interface CliIo {
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
}

const USAGE =
  'usage: verify-bundle --bundle FILE (--certificate-identity ID --certificate-oidc-issuer ISS | --key FILE) [--trusted-root FILE] ARTIFACT';

const VALUE_FLAGS = new Set(['--bundle', '--certificate-identity', '--certificate-oidc-issuer', '--key', '--trusted-root']);

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 500);
}

export async function runConformanceCli(argv: string[], io: CliIo = {}): Promise<number> {
  const out = io.stdout ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.stderr ?? ((l: string) => process.stderr.write(`${l}\n`));
  const args = [...argv];
  if (args[0] !== 'verify-bundle') {
    err(USAGE);
    return 2;
  }
  args.shift();
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (!VALUE_FLAGS.has(name)) {
        err(`unknown option ${oneLine(name)}; ${USAGE}`);
        return 2;
      }
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || flags.has(name)) {
        err(`${name} needs exactly one value; ${USAGE}`);
        return 2;
      }
      flags.set(name, v);
    } else {
      positional.push(a);
    }
  }
  const bundlePath = flags.get('--bundle');
  const identity = flags.get('--certificate-identity');
  const issuer = flags.get('--certificate-oidc-issuer');
  const keyPath = flags.get('--key');
  const keyless = identity !== undefined || issuer !== undefined;
  if (
    bundlePath === undefined ||
    positional.length !== 1 ||
    keyless === (keyPath !== undefined) ||
    (keyless && (identity === undefined || issuer === undefined))
  ) {
    err(USAGE);
    return 2;
  }
  try {
    const rootPath = flags.get('--trusted-root');
    const trust = createBundleTrust(rootPath === undefined ? undefined : (JSON.parse(await readFile(rootPath, 'utf8')) as object));
    const target = positional[0]!;
    let artifact: Artifact;
    const m = /^sha256:([0-9a-fA-F]{64})$/.exec(target);
    if (m !== null) artifact = { digest: { algorithm: 'sha256', hex: m[1]! } };
    else artifact = { data: await readFile(target) };
    const policy: SignerPolicy =
      keyPath !== undefined
        ? { kind: 'key', keys: [{ publicKeyPem: await readFile(keyPath, 'utf8') }] }
        : { kind: 'keyless', identity: identity!, issuer: issuer! };
    const bundleText = await readFile(bundlePath, 'utf8');
    const verdict = createBundleVerifier(trust).verify(bundleText, artifact, policy);
    if (verdict.ok) {
      out(`verified${verdict.signer?.identity !== undefined ? `: ${verdict.signer.identity}` : ''}`);
      return 0;
    }
    err(oneLine(`rejected (${verdict.code ?? 'UNKNOWN'}): ${verdict.reason ?? ''}`));
    return 1;
  } catch (e) {
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'ERROR';
    err(oneLine(`rejected (${code}): ${e instanceof Error ? e.message : String(e)}`));
    return 1;
  }
}
