// The verdict: one bundle, one artifact, one signer policy. Every path that does not end in `ok: true` carries a
// code and a reason; nothing escapes as an exception.
import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { parseBundle } from './bundle.js';
import type { Bundle, Content } from './bundle.js';
import { checkLeafProfile, verifyLeafChain } from './chain.js';
import { IN_TOTO_PAYLOAD_TYPE, parseStatement, preAuthEncoding, statementCoversSha256 } from './dsse.js';
import type { Statement } from './dsse.js';
import { pemToDer } from './encoding.js';
import { VerifyError, reject } from './errors.js';
import { defaultHash, digest, keyKind, publicKeyFromSpki, verifyPrehashed, verifySignature } from './keys.js';
import { verifyScts } from './sct.js';
import { checkBody, checkLoggedVerifier, verifyInclusion } from './tlog.js';
import type { IncludedEntry, LoggedVerifier } from './tlog.js';
import type { BundleTrust } from './trust.js';
import { verifyTimestamp } from './tsa.js';
import { OID, fulcioIssuer, isSelfIssued, utf8Extension } from './x509.js';
import { parseCertificateCached } from './memo.js';
import type { Certificate } from './x509.js';

export type Artifact = { data: Uint8Array } | { digest: { algorithm: 'sha256'; hex: string } };

export type SignerPolicy =
  | {
      kind: 'keyless';
      /** Exact certificate identity (SAN URI, email or Fulcio username). */
      identity?: string;
      /** A user-written JavaScript regular expression; it must match the whole SAN (we anchor it). */
      identityRegExp?: string;
      /** Exact OIDC issuer. */
      issuer: string;
    }
  | {
      kind: 'key';
      keys: Array<{
        publicKeyPem: string;
        /** Rotation: the key counts only for signatures whose every verified time lies inside the window. */
        validFrom?: Date;
        validUntil?: Date;
      }>;
    };

export interface BundleSigner {
  identity?: string;
  issuer?: string;
  keyId?: string;
  logIndex?: string;
  signedAt?: string;
  /** Fulcio CI extensions, as the CA wrote them from the OIDC token; absent for people (email identities). */
  sourceRepositoryDigest?: string;
  sourceRepositoryRef?: string;
  sourceRepositoryURI?: string;
  buildSignerURI?: string;
  /** The event that started the run (`push`, `pull_request`, …). */
  buildTrigger?: string;
  /** `github-hosted` or `self-hosted`. */
  runnerEnvironment?: string;
}

export interface BundleVerdict {
  ok: boolean;
  code?: string;
  reason?: string;
  signer?: BundleSigner;
  statement?: Statement;
}

export interface BundleVerifier {
  verify(bundleJson: unknown, artifact: Artifact, policy: SignerPolicy): BundleVerdict;
}

const FUTURE_SKEW_MS = 5 * 60_000;

// Policies are typically constant across calls; remember parsed keys and compiled patterns by their exact text.
const keyCache = new Map<string, KeyObject>();
const regexCache = new Map<string, RegExp>();

function policyKey(pem: string): KeyObject {
  let k = keyCache.get(pem);
  if (k === undefined) {
    if (typeof pem !== 'string') reject('POLICY_INVALID', 'publicKeyPem must be a string');
    try {
      k = publicKeyFromSpki(pemToDer(pem, 'PUBLIC KEY'), 'policy key');
    } catch (e) {
      return reject('POLICY_INVALID', `policy key is not a PEM public key (${e instanceof Error ? e.message : ''})`);
    }
    if (keyKind(k) === 'unsupported') reject('POLICY_INVALID', 'policy key type is not supported');
    if (keyCache.size > 256) keyCache.clear();
    keyCache.set(pem, k);
  }
  return k;
}

function anchoredRegExp(source: string): RegExp {
  let re = regexCache.get(source);
  if (re === undefined) {
    try {
      // A non-capturing group keeps alternations inside the anchors: "a|b" must not become "^a|b$". The `u` flag is
      // the one the policy schema validates with: compiling without it would give `\p{…}`, `\u{…}` and `.` other
      // meanings than the ones that were checked.
      re = new RegExp(`^(?:${source})$`, 'u');
    } catch {
      return reject('POLICY_INVALID', 'identityRegExp is not a valid regular expression');
    }
    if (regexCache.size > 256) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}

function checkPolicyShape(policy: SignerPolicy): void {
  if (typeof policy !== 'object' || policy === null) reject('POLICY_INVALID', 'policy is not an object');
  if (policy.kind === 'keyless') {
    if (typeof policy.issuer !== 'string' || policy.issuer === '') reject('POLICY_INVALID', 'keyless policy needs an issuer');
    const hasId = typeof policy.identity === 'string' && policy.identity !== '';
    const hasRe = typeof policy.identityRegExp === 'string' && policy.identityRegExp !== '';
    if (!hasId && !hasRe) reject('POLICY_INVALID', 'keyless policy needs an identity or identityRegExp');
    if (hasRe) anchoredRegExp(policy.identityRegExp!);
    return;
  }
  if (policy.kind === 'key') {
    if (!Array.isArray(policy.keys) || policy.keys.length === 0) reject('POLICY_INVALID', 'key policy lists no keys');
    for (const k of policy.keys) {
      policyKey(k.publicKeyPem);
      for (const d of [k.validFrom, k.validUntil]) {
        if (d !== undefined && (!(d instanceof Date) || Number.isNaN(d.getTime())))
          reject('POLICY_INVALID', 'key validity bounds must be valid Dates');
      }
    }
    return;
  }
  reject('POLICY_INVALID', 'unknown policy kind');
}

function artifactSha256Hex(artifact: Artifact): string {
  if ('data' in artifact) return createHash('sha256').update(artifact.data).digest('hex');
  return artifact.digest.hex.toLowerCase();
}

function checkArtifactShape(artifact: Artifact): void {
  if (typeof artifact !== 'object' || artifact === null) reject('ARTIFACT_INVALID', 'artifact is not an object');
  if ('data' in artifact) {
    if (!(artifact.data instanceof Uint8Array)) reject('ARTIFACT_INVALID', 'artifact data must be a Uint8Array');
    return;
  }
  const d = (artifact as { digest?: { algorithm?: unknown; hex?: unknown } }).digest;
  if (d === undefined || d.algorithm !== 'sha256' || typeof d.hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(d.hex)) {
    reject('ARTIFACT_INVALID', 'artifact digest must be sha256 with 64 hex digits');
  }
}

/** Cheap checks that tie the bundle's content to the artifact, before any signature work. */
function checkContentAgainstArtifact(content: Content, artifact: Artifact): Statement | undefined {
  if (content.kind === 'message') {
    if ('data' in artifact) {
      if (!digest(content.hash, artifact.data).equals(content.digest)) {
        reject('ARTIFACT_MISMATCH', 'bundle message digest does not match the artifact');
      }
    } else if (content.hash !== 'sha256' || content.digest.toString('hex') !== artifact.digest.hex.toLowerCase()) {
      reject('ARTIFACT_MISMATCH', 'bundle message digest does not match the artifact digest');
    }
    return undefined;
  }
  // Only in-toto statements say what they are about; any other DSSE payload cannot be tied to the artifact.
  if (content.payloadType !== IN_TOTO_PAYLOAD_TYPE) reject('DSSE_PAYLOAD_UNSUPPORTED', 'DSSE payload is not an in-toto statement');
  const statement = parseStatement(content.payload);
  if (!statementCoversSha256(statement, artifactSha256Hex(artifact))) {
    reject('SUBJECT_MISMATCH', 'no in-toto subject has the artifact sha256 digest');
  }
  return statement;
}

function contentSignatureValid(content: Content, key: KeyObject, artifact: Artifact): boolean {
  if (content.kind === 'dsse') {
    return verifySignature(key, defaultHash(key), preAuthEncoding(content.payloadType, content.payload), content.signature);
  }
  const ed = keyKind(key) === 'ed25519';
  if ('data' in artifact) return verifySignature(key, ed ? null : content.hash, artifact.data, content.signature);
  // Pure Ed25519 signs the message itself; with only a digest there is nothing to check it against.
  if (ed) reject('ARTIFACT_DIGEST_UNSUPPORTED', 'Ed25519 message signatures need the artifact bytes, not a digest');
  return verifyPrehashed(key, 'sha256', content.digest, content.signature);
}

function signerIdentity(leaf: Certificate): string {
  const ids = leaf.sans.filter((s) => s.kind === 'email' || s.kind === 'uri' || s.kind === 'otherName');
  // Fulcio issues exactly one identity; several would make "the" signer ambiguous.
  if (ids.length !== 1 || leaf.sans.length !== 1) reject('CERTIFICATE_INVALID', 'signing certificate must carry exactly one identity');
  return ids[0]!.value;
}

function verifyBundle(trust: BundleTrust, nowMs: number, bundleJson: unknown, artifact: Artifact, policy: SignerPolicy): BundleVerdict {
  checkPolicyShape(policy);
  checkArtifactShape(artifact);
  let json = bundleJson;
  if (typeof json === 'string' || json instanceof Uint8Array) {
    try {
      json = JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
    } catch {
      return reject('BUNDLE_INVALID', 'bundle is not valid JSON');
    }
  }
  const bundle: Bundle = parseBundle(json);
  const { content, material } = bundle;

  if (policy.kind === 'keyless' && material.kind !== 'certificate') {
    reject('POLICY_MATERIAL_MISMATCH', 'keyless policy but the bundle is signed with a public key');
  }
  if (policy.kind === 'key' && material.kind !== 'publicKey') {
    reject('POLICY_MATERIAL_MISMATCH', 'key policy but the bundle is signed with a certificate');
  }

  const statement = checkContentAgainstArtifact(content, artifact);

  // Transparency log: inclusion and body binding for every entry (at least one is required).
  if (bundle.tlogEntries.length === 0) reject('TLOG_MISSING', 'bundle has no transparency log entry');
  const included: IncludedEntry[] = [];
  const logged: LoggedVerifier[] = [];
  for (const entry of bundle.tlogEntries) {
    included.push(verifyInclusion(entry, trust, nowMs));
    logged.push(checkBody(entry, content));
  }

  // Verified times: SET-authenticated integrated times and trusted RFC 3161 timestamps over the signature.
  const times: number[] = [];
  for (const inc of included) if (inc.integratedTimeMs !== undefined) times.push(inc.integratedTimeMs);
  for (const ts of bundle.timestamps) {
    const t = verifyTimestamp(ts, content.signature, trust);
    if (t > nowMs + FUTURE_SKEW_MS) reject('TIMESTAMP_IN_FUTURE', 'timestamp is in the future');
    times.push(t);
  }
  if (times.length === 0) reject('TIMESTAMP_MISSING', 'bundle has no verified time (no inclusion promise, no trusted timestamp)');
  for (const inc of included) {
    if (inc.integratedTimeMs !== undefined) continue;
    // Proof-only (Rekor v2) entries carry no time of their own: the log key must be valid at the verified times.
    if (times.some((t) => t < inc.tlog.start || t > inc.tlog.end)) {
      reject('TLOG_KEY_EXPIRED', 'transparency log key is not valid at the verified signing time');
    }
  }

  let key: KeyObject;
  let leaf: Certificate | undefined;
  const signer: BundleSigner = {};
  if (material.kind === 'certificate') {
    // Parsed certificates (and their keys) are remembered by exact DER: the same Fulcio leaf and intermediates recur.
    const parsedLeaf = parseCertificateCached(material.leaf);
    leaf = parsedLeaf.cert;
    for (const der of material.rest) {
      // Intermediates in the bundle are never trusted; a root in there is a malformed bundle (conformance).
      if (isSelfIssued(parseCertificateCached(der).cert)) reject('BUNDLE_INVALID', 'bundle certificate chain contains a root certificate');
    }
    checkLeafProfile(leaf);
    const { issuer } = verifyLeafChain(leaf, times, trust);
    verifyScts(leaf, issuer, trust);
    key = parsedLeaf.key;
    if (keyKind(key) === 'unsupported') reject('KEY_UNSUPPORTED', 'signing certificate key type is not supported');
    if (!contentSignatureValid(content, key, artifact))
      reject('SIGNATURE_INVALID', 'signature does not verify with the signing certificate');
  } else {
    if (policy.kind !== 'key') return reject('POLICY_MATERIAL_MISMATCH', 'unreachable');
    let matched: KeyObject | undefined;
    let outsideWindow = false;
    for (const k of policy.keys) {
      const candidate = policyKey(k.publicKeyPem);
      if (!contentSignatureValid(content, candidate, artifact)) continue;
      const from = k.validFrom?.getTime() ?? -Infinity;
      const until = k.validUntil?.getTime() ?? Infinity;
      if (times.every((t) => from <= t && t <= until)) {
        matched = candidate;
        break;
      }
      outsideWindow = true;
    }
    if (matched === undefined) {
      return outsideWindow
        ? reject('KEY_OUTSIDE_VALIDITY', 'signature verifies only with a policy key outside its validity window')
        : reject('SIGNATURE_INVALID', 'signature does not verify with any policy key');
    }
    key = matched;
    signer.keyId = createHash('sha256')
      .update(key.export({ format: 'der', type: 'spki' }))
      .digest('hex');
  }

  for (const l of logged) checkLoggedVerifier(l, leaf?.der, key);

  if (leaf !== undefined && policy.kind === 'keyless') {
    const identity = signerIdentity(leaf);
    const issuer = fulcioIssuer(leaf);
    if (issuer !== policy.issuer)
      reject('IDENTITY_MISMATCH', `certificate issuer ${JSON.stringify(issuer ?? null)} is not the policy issuer`);
    if (policy.identity !== undefined && policy.identity !== '' && identity !== policy.identity) {
      reject('IDENTITY_MISMATCH', `certificate identity ${JSON.stringify(identity)} is not the policy identity`);
    }
    if (policy.identityRegExp !== undefined && policy.identityRegExp !== '' && !anchoredRegExp(policy.identityRegExp).test(identity)) {
      reject('IDENTITY_MISMATCH', `certificate identity ${JSON.stringify(identity)} does not match the policy pattern`);
    }
    signer.identity = identity;
    signer.issuer = issuer;
    const extensions = [
      ['sourceRepositoryDigest', OID.fulcioSourceRepoDigest],
      ['sourceRepositoryRef', OID.fulcioSourceRepoRef],
      ['sourceRepositoryURI', OID.fulcioSourceRepoUri],
      ['buildSignerURI', OID.fulcioBuildSignerUri],
      ['buildTrigger', OID.fulcioBuildTrigger],
      ['runnerEnvironment', OID.fulcioRunnerEnvironment],
    ] as const;
    for (const [field, oid] of extensions) {
      const value = utf8Extension(leaf, oid);
      if (value !== undefined) signer[field] = value;
    }
  }

  signer.logIndex = included[0]!.logIndex.toString();
  signer.signedAt = new Date(Math.min(...times)).toISOString();
  const verdict: BundleVerdict = { ok: true, signer };
  if (statement !== undefined) verdict.statement = statement;
  return verdict;
}

export function createBundleVerifier(trust: BundleTrust, opts?: { now?: () => Date }): BundleVerifier {
  const now = opts?.now ?? (() => new Date());
  return {
    verify(bundleJson, artifact, policy) {
      try {
        const nowMs = now().getTime();
        if (!Number.isFinite(nowMs)) return { ok: false, code: 'CLOCK_INVALID', reason: 'now() did not return a valid Date' };
        return verifyBundle(trust, nowMs, bundleJson, artifact, policy);
      } catch (e) {
        if (e instanceof VerifyError) return { ok: false, code: e.code, reason: e.message };
        // Anything else is a bug or an input shape we did not foresee; it is still a rejection, never a pass.
        let reason = 'internal error';
        try {
          reason = `internal error: ${e instanceof Error ? e.message : String(e)}`;
        } catch {
          // A hostile object whose toString throws.
        }
        return { ok: false, code: 'INTERNAL_ERROR', reason };
      }
    },
  };
}
