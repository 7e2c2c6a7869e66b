/**
 * Sigstore trust material (a `trusted_root.json`), parsed once per process.
 *
 * Parsing the certificate chains and log keys is the expensive part of every Sigstore verification, so callers build a
 * SigstoreTrust at startup and hand the same object to every verification. Nothing here touches the network: the
 * public-good root is the copy that ships inside @sigstore/tuf (its TUF seed), and a private deployment passes its own
 * trusted_root.json object instead.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial } from '@sigstore/verify';
import type { TrustMaterial } from '@sigstore/verify';
import { CommitVerifyError } from './types.js';

/** A Fulcio (or TSA) certificate authority: its chain (leaf-most first, root last) and when it may be used. */
export type SigstoreCertAuthority = TrustMaterial['certificateAuthorities'][number];
/** A transparency log (Rekor) or CT log key: log id, key, validity window. */
export type SigstoreLogAuthority = TrustMaterial['tlogs'][number];

export interface SigstoreTrust {
  /** The trusted_root.json object this trust was built from, as given (treat as read-only). */
  readonly json: object;
  readonly mediaType: string;
  /** Everything below in the shape @sigstore/verify's Verifier consumes. */
  readonly material: TrustMaterial;
  /** Fulcio CAs, each with its validity window. */
  readonly certificateAuthorities: readonly SigstoreCertAuthority[];
  /** Rekor log keys. */
  readonly tlogs: readonly SigstoreLogAuthority[];
  /** Rekor log keys by log id (lower-case hex of the key id); one id may carry several keys over time. */
  readonly tlogsByLogId: ReadonlyMap<string, readonly SigstoreLogAuthority[]>;
  /** Certificate-transparency log keys (SCTs in Fulcio certificates). */
  readonly ctlogs: readonly SigstoreLogAuthority[];
  /** RFC 3161 timestamp authorities. */
  readonly timestampAuthorities: readonly SigstoreCertAuthority[];
}

const PUBLIC_GOOD_TUF_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';

/**
 * The Sigstore public-good trusted_root.json as shipped in @sigstore/tuf's seeds.json (offline; no TUF refresh).
 * Returns a fresh object on every call.
 */
export function loadPublicGoodTrustedRoot(): object {
  const require = createRequire(import.meta.url);
  let seeds: unknown;
  try {
    seeds = JSON.parse(readFileSync(require.resolve('@sigstore/tuf/seeds.json'), 'utf8'));
  } catch (err) {
    throw new CommitVerifyError('SIGSTORE_TRUST_UNAVAILABLE', `cannot read @sigstore/tuf seeds.json: ${errorMessage(err)}`);
  }
  const target = (seeds as Record<string, { targets?: Record<string, unknown> }> | null)?.[PUBLIC_GOOD_TUF_MIRROR]?.targets?.['trusted_root.json'];
  if (typeof target !== 'string') {
    throw new CommitVerifyError('SIGSTORE_TRUST_UNAVAILABLE', 'seeds.json has no trusted_root.json target for the public-good TUF mirror');
  }
  try {
    return JSON.parse(Buffer.from(target, 'base64').toString('utf8')) as object;
  } catch (err) {
    throw new CommitVerifyError('SIGSTORE_TRUST_UNAVAILABLE', `seeds.json trusted_root.json is not JSON: ${errorMessage(err)}`);
  }
}

/**
 * Parses a trusted_root.json object (default: the public-good root). Throws CommitVerifyError(SIGSTORE_TRUST_INVALID)
 * for a root that cannot be used — configuration errors surface at startup, not as per-commit rejections.
 */
export function createSigstoreTrust(trustedRootJson: object = loadPublicGoodTrustedRoot()): SigstoreTrust {
  if (trustedRootJson === null || typeof trustedRootJson !== 'object' || Array.isArray(trustedRootJson)) {
    throw new CommitVerifyError('SIGSTORE_TRUST_INVALID', 'trusted root must be a JSON object');
  }
  const raw = trustedRootJson as Record<string, unknown>;
  const mediaType = raw['mediaType'];
  if (typeof mediaType !== 'string' || !mediaType.startsWith('application/vnd.dev.sigstore.trustedroot')) {
    throw new CommitVerifyError('SIGSTORE_TRUST_INVALID', `trusted root has an unexpected mediaType: ${String(mediaType)}`);
  }
  for (const key of ['tlogs', 'certificateAuthorities'] as const) {
    if (!Array.isArray(raw[key]) || (raw[key] as unknown[]).length === 0) {
      throw new CommitVerifyError('SIGSTORE_TRUST_INVALID', `trusted root has no ${key}`);
    }
  }

  let material: TrustMaterial;
  try {
    const root = TrustedRoot.fromJSON(raw);
    // fromJSON fills absent fields with defaults; a CA without certificates or a log without a key would silently
    // trust nothing (or crash later), so insist on them here.
    for (const ca of [...root.certificateAuthorities, ...root.timestampAuthorities]) {
      if (!ca.certChain || ca.certChain.certificates.length === 0) throw new Error('a certificate authority has an empty certChain');
    }
    for (const log of [...root.tlogs, ...root.ctlogs]) {
      if (!log.publicKey?.rawBytes?.length) throw new Error(`log ${log.baseUrl} has no publicKey.rawBytes`);
      if (!log.logId?.keyId?.length) throw new Error(`log ${log.baseUrl} has no logId`);
    }
    // No keyed (non-certificate) signers are trusted: the key finder rejects every hint.
    material = toTrustMaterial(root, {});
  } catch (err) {
    if (err instanceof CommitVerifyError) throw err;
    throw new CommitVerifyError('SIGSTORE_TRUST_INVALID', `trusted root cannot be parsed: ${errorMessage(err)}`);
  }

  const tlogsByLogId = new Map<string, SigstoreLogAuthority[]>();
  for (const tlog of material.tlogs) {
    const id = tlog.logID.toString('hex');
    const list = tlogsByLogId.get(id);
    if (list) list.push(tlog);
    else tlogsByLogId.set(id, [tlog]);
  }

  return Object.freeze({
    json: trustedRootJson,
    mediaType,
    material,
    certificateAuthorities: material.certificateAuthorities,
    tlogs: material.tlogs,
    tlogsByLogId,
    ctlogs: material.ctlogs,
    timestampAuthorities: material.timestampAuthorities,
  });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
