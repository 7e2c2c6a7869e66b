/**
 * A private Sigstore for image tests: @sigstore/mock's Fulcio CA (with a CT log, so leaves carry SCTs) and Rekor log
 * served on 127.0.0.1, driven by the real @sigstore/sign clients (FulcioSigner, RekorWitness, bundle builders), plus
 * a trusted_root.json naming exactly these keys for `createBundleTrust`.
 *
 * Keyless identities look like GitHub Actions: the OIDC token claims become Fulcio extensions — issuer (…1.8), source
 * repository digest (…1.13) from `sha`, build signer URI (…1.9) from `job_workflow_ref`, source ref (…1.14), source
 * repository URI (…1.12) from `repository`, build trigger (…1.20) from `event_name`, runner environment (…1.11).
 * For a GitHub workflow SAN the repository and ref default to the SAN's, the trigger to `push` and the runner to
 * `github-hosted`, as GitHub's tokens say for a plain (non-reusable) workflow; `null` leaves a claim out.
 * Key signing goes through the same Rekor, with a settable log clock so rotation windows can be tested.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleToJSON } from '@sigstore/bundle';
import type { SerializedBundle } from '@sigstore/bundle';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler } from '@sigstore/mock';
import { DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } from '@sigstore/sign';
import type { Signer } from '@sigstore/sign';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const IN_TOTO = 'application/vnd.in-toto+json';

export interface WorkflowIdentity {
  /** Certificate SAN (URI), e.g. https://github.com/org/app/.github/workflows/release.yml@refs/heads/main */
  san: string;
  /** OIDC issuer; GitHub Actions unless given. */
  issuer?: string;
  /** Commit the workflow ran on: the source-repository-digest extension. */
  sha?: string;
  /** `org/repo/.github/workflows/x.yml@ref`: the build-signer-URI extension (`https://github.com/` + this). */
  jobWorkflowRef?: string;
  /** Source ref (`refs/heads/main`, `refs/pull/7/merge`). */
  ref?: string | null;
  /** `owner/repo`: the source repository URI extension is `https://github.com/` + this. */
  repository?: string | null;
  /** `push`, `pull_request`, `pull_request_target`, … */
  eventName?: string | null;
  /** `github-hosted` or `self-hosted`. */
  runnerEnvironment?: string | null;
}

const GITHUB_WORKFLOW_SAN = /^https:\/\/github\.com\/([^/]+\/[^/]+)\/\.github\/workflows\/[^@]+@(.+)$/;

export interface PrivateSigstore {
  trustedRoot: object;
  /** Keyless DSSE (in-toto) bundle, logged as an intoto/0.0.2 entry like cosign attest. */
  signStatement(statement: object, identity: WorkflowIdentity): Promise<SerializedBundle>;
  /** Keyless message-signature bundle over `data` (hashedrekord entry). */
  signMessage(data: Uint8Array, identity: WorkflowIdentity): Promise<SerializedBundle>;
  /** Key-signed DSSE bundle; `at` sets the log's integrated time. */
  signStatementWithKey(statement: object, key: KeyObject, opts?: { at?: Date }): Promise<SerializedBundle>;
  signMessageWithKey(data: Uint8Array, key: KeyObject, opts?: { at?: Date }): Promise<SerializedBundle>;
  close(): Promise<void>;
}

function b64url(o: object): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

/** An unsigned JWT: the mock Fulcio decodes claims without verifying, which is all a test CA needs. */
function identityToken(id: WorkflowIdentity): string {
  const issuer = id.issuer ?? GITHUB_ISSUER;
  const claims: Record<string, string> = { iss: issuer, sub: id.san, aud: 'sigstore' };
  const fromSan = GITHUB_WORKFLOW_SAN.exec(id.san);
  const github = issuer === GITHUB_ISSUER;
  const put = (claim: string, value: string | null | undefined, fallback: string | undefined): void => {
    const v = value === undefined ? fallback : value;
    if (v !== null && v !== undefined) claims[claim] = v;
  };
  put('sha', id.sha, undefined);
  put('job_workflow_ref', id.jobWorkflowRef, undefined);
  put('ref', id.ref, fromSan?.[2]);
  put('repository', id.repository, fromSan?.[1]);
  put('event_name', id.eventName, github ? 'push' : undefined);
  put('runner_environment', id.runnerEnvironment, github ? 'github-hosted' : undefined);
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}

function keySigner(key: KeyObject): Signer {
  const pub = createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
  return {
    sign: async (data: Buffer) => ({
      signature: cryptoSign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key),
      key: { $case: 'publicKey', publicKey: pub, hint: '' },
    }),
  };
}

export async function startPrivateSigstore(): Promise<PrivateSigstore> {
  const ec = (): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caKeys = ec();
  const ctKeys = ec();
  const logKeys = ec();
  const ctLog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctLog);
  const fulcio = fulcioHandler(ca);

  let server: Server | undefined;
  let logClock: Date | undefined;
  let baseUrl = '';
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let handler;
        if (req.method === 'POST' && req.url === fulcio.path) handler = fulcio;
        else if (req.method === 'POST' && req.url === '/api/v1/log/entries')
          handler = rekorHandler(await initializeTLog(baseUrl, logKeys, logClock));
        if (handler === undefined) {
          res.writeHead(404).end();
          return;
        }
        const out = await handler.fn(body);
        res.writeHead(out.statusCode, { 'content-type': out.contentType ?? 'text/plain' }).end(out.response);
      })().catch((e: unknown) => {
        res.writeHead(500).end(String(e));
      });
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const spki = (k: KeyObject): Buffer => k.export({ format: 'der', type: 'spki' });
  const since = { start: '2020-01-01T00:00:00Z' };
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: spki(logKeys.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: since },
        logId: { keyId: createHash('sha256').update(spki(logKeys.publicKey)).digest('base64') },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: baseUrl,
        certChain: {
          certificates: [
            {
              rawBytes: Buffer.from(ca.rootCertificate.buffer, ca.rootCertificate.byteOffset, ca.rootCertificate.byteLength).toString(
                'base64',
              ),
            },
          ],
        },
        validFor: since,
      },
    ],
    ctlogs: [
      {
        baseUrl,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: Buffer.from(ctLog.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: since },
        logId: { keyId: Buffer.from(ctLog.logID.buffer, ctLog.logID.byteOffset, ctLog.logID.byteLength).toString('base64') },
      },
    ],
    timestampAuthorities: [],
  };

  const witness = (): RekorWitness => new RekorWitness({ rekorBaseURL: baseUrl, entryType: 'intoto', retry: 0 });
  const fulcioSigner = (id: WorkflowIdentity): Signer =>
    new FulcioSigner({ fulcioBaseURL: baseUrl, identityProvider: { getToken: async () => identityToken(id) }, retry: 0 });

  // One signing at a time: the log clock is shared state.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const next = queue.then(f, f);
    queue = next.catch(() => undefined);
    return next;
  };
  const withClock = <T>(at: Date | undefined, f: () => Promise<T>): Promise<T> =>
    serial(async () => {
      logClock = at;
      try {
        return await f();
      } finally {
        logClock = undefined;
      }
    });

  // The mock log proves every entry as leaf 0 of a one-leaf tree, and protobuf JSON drops zero values, so the proof's
  // logIndex is absent from the serialized bundle. bundle-verify requires the field; spelling out the zero keeps the
  // bundle equivalent (protobuf JSON allows explicit defaults).
  const withExplicitZeros = (b: SerializedBundle): SerializedBundle => {
    for (const e of b.verificationMaterial.tlogEntries) {
      const p = e.inclusionProof as unknown as Record<string, unknown> | undefined;
      if (p !== undefined && p['logIndex'] === undefined) p['logIndex'] = '0';
    }
    return b;
  };
  const dsse = async (signer: Signer, statement: object): Promise<SerializedBundle> => {
    const b = await new DSSEBundleBuilder({ signer, witnesses: [witness()] }).create({
      data: Buffer.from(JSON.stringify(statement)),
      type: IN_TOTO,
    });
    return withExplicitZeros(bundleToJSON(b));
  };
  const message = async (signer: Signer, data: Uint8Array): Promise<SerializedBundle> => {
    const b = await new MessageSignatureBundleBuilder({ signer, witnesses: [witness()] }).create({ data: Buffer.from(data) });
    return withExplicitZeros(bundleToJSON(b));
  };

  return {
    trustedRoot,
    signStatement: (statement, id) => withClock(undefined, () => dsse(fulcioSigner(id), statement)),
    signMessage: (data, id) => withClock(undefined, () => message(fulcioSigner(id), data)),
    signStatementWithKey: (statement, key, o) => withClock(o?.at, () => dsse(keySigner(key), statement)),
    signMessageWithKey: (data, key, o) => withClock(o?.at, () => message(keySigner(key), data)),
    close: () =>
      new Promise<void>((r) => {
        server?.close(() => r());
        server = undefined;
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Bundle → cosign legacy layout pieces

interface RekorSetBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

function rekorBundleOf(b: SerializedBundle): RekorSetBundle {
  const e = b.verificationMaterial.tlogEntries[0];
  if (e === undefined || e.inclusionPromise === undefined) throw new Error('bundle has no tlog entry with an inclusion promise');
  return {
    SignedEntryTimestamp: e.inclusionPromise.signedEntryTimestamp,
    Payload: {
      body: e.canonicalizedBody,
      integratedTime: Number(e.integratedTime),
      logIndex: Number(e.logIndex),
      logID: Buffer.from(e.logId.keyId, 'base64').toString('hex'),
    },
  };
}

function certificatePemOf(b: SerializedBundle): string | undefined {
  const vm = b.verificationMaterial as unknown as {
    certificate?: { rawBytes: string };
    x509CertificateChain?: { certificates: Array<{ rawBytes: string }> };
  };
  const der = vm.certificate?.rawBytes ?? vm.x509CertificateChain?.certificates[0]?.rawBytes;
  if (der === undefined) return undefined;
  return `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** The annotations cosign puts on a `.sig` layer, from a message-signature bundle over the simple-signing payload. */
export function cosignSignatureFromBundle(b: SerializedBundle): { signatureBase64: string; certificatePem?: string; rekorBundle: object } {
  const ms = (b as unknown as { messageSignature?: { signature: string } }).messageSignature;
  if (ms === undefined) throw new Error('not a message-signature bundle');
  const pem = certificatePemOf(b);
  return pem === undefined
    ? { signatureBase64: ms.signature, rekorBundle: rekorBundleOf(b) }
    : { signatureBase64: ms.signature, certificatePem: pem, rekorBundle: rekorBundleOf(b) };
}

/** The DSSE envelope and annotations cosign puts on an `.att` layer, from a DSSE bundle. */
export function cosignAttestationFromBundle(b: SerializedBundle): { envelope: object; certificatePem?: string; rekorBundle: object } {
  const env = (
    b as unknown as { dsseEnvelope?: { payload: string; payloadType: string; signatures: Array<{ sig: string; keyid: string }> } }
  ).dsseEnvelope;
  if (env === undefined) throw new Error('not a DSSE bundle');
  const envelope = {
    payloadType: env.payloadType,
    payload: env.payload,
    signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
  };
  const pem = certificatePemOf(b);
  return pem === undefined ? { envelope, rekorBundle: rekorBundleOf(b) } : { envelope, certificatePem: pem, rekorBundle: rekorBundleOf(b) };
}

// ---------------------------------------------------------------------------------------------------------------
// Statements

export function slsaV1Statement(opts: {
  digest: string;
  name?: string;
  builderId?: string;
  repository?: string;
  commit?: string;
  /** The ref the build ran on; `refs/heads/main` unless given. */
  ref?: string;
  extraDependencies?: Array<Record<string, unknown>>;
}): object {
  const repo = opts.repository ?? 'https://github.com/org/app';
  const ref = opts.ref ?? 'refs/heads/main';
  const deps: Array<Record<string, unknown>> = [];
  if (opts.commit !== undefined) deps.push({ uri: `git+${repo}@${ref}`, digest: { gitCommit: opts.commit } });
  deps.push(...(opts.extraDependencies ?? []));
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: opts.name ?? 'image', digest: { sha256: opts.digest.replace(/^sha256:/, '') } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://actions.github.io/buildtypes/workflow/v1',
        externalParameters: { workflow: { ref, repository: repo, path: '.github/workflows/release.yml' } },
        internalParameters: { github: { event_name: 'push' } },
        resolvedDependencies: deps,
      },
      runDetails: {
        builder: { id: opts.builderId ?? 'https://github.com/actions/runner/github-hosted' },
        metadata: { invocationId: `${repo}/actions/runs/1/attempts/1` },
      },
    },
  };
}

export function slsaV02Statement(opts: {
  digest: string;
  name?: string;
  builderId: string;
  repository?: string;
  commit?: string;
  ref?: string;
}): object {
  const repo = opts.repository ?? 'https://github.com/org/app';
  const ref = opts.ref ?? 'refs/heads/main';
  const configSource: Record<string, unknown> = { uri: `git+${repo}@${ref}`, entryPoint: '.github/workflows/release.yml' };
  if (opts.commit !== undefined) configSource['digest'] = { sha1: opts.commit };
  return {
    _type: 'https://in-toto.io/Statement/v0.1',
    subject: [{ name: opts.name ?? 'image', digest: { sha256: opts.digest.replace(/^sha256:/, '') } }],
    predicateType: 'https://slsa.dev/provenance/v0.2',
    predicate: {
      builder: { id: opts.builderId },
      buildType: 'https://github.com/slsa-framework/slsa-github-generator/container@v1',
      invocation: { configSource, parameters: {}, environment: {} },
      materials: opts.commit === undefined ? [] : [{ uri: `git+${repo}@${ref}`, digest: { sha1: opts.commit } }],
    },
  };
}

/** cosign v3's image signature statement. */
export function cosignSignStatement(digest: string): object {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: '', digest: { sha256: digest.replace(/^sha256:/, '') } }],
    predicateType: 'https://sigstore.dev/cosign/sign/v1',
    predicate: {},
  };
}
