/**
 * gitsign (Sigstore keyless) commit-signature verification.
 *
 * A gitsign signature is a detached CMS SignedData over the commit payload, signed with an ephemeral key whose Fulcio
 * certificate lives ten minutes. What makes it trustworthy after those ten minutes is Rekor: the log entry proves the
 * signature existed while the certificate was valid. So acceptance needs all of: the CMS signature over this payload,
 * a log entry (embedded, or found online) that binds this signature and certificate, verified against the trusted
 * root's log keys, the certificate chain to a trusted Fulcio CA at the log's integrated time, and an identity the
 * policy names exactly. Anything short of that is a rejection with a code — never an exception.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { pem } from '@sigstore/core';
import { VerifyError, checkLeafProfile, parseCertificateCached, verifySignature } from '@gitops-gate/bundle-verify';
import type { BundleTrust } from '@gitops-gate/bundle-verify';
import type { MethodResult } from '../types.js';
import { CmsError, OID, decodeSignaturePem, parseGitsignCms, singleAttributeValue } from './cms.js';
import type { GitsignCms } from './cms.js';
import { TAG, decodeOid, isDerError } from './der-view.js';
import { IdentityError, certificateIdentity, compileRule } from './identity.js';
import type { CertificateIdentity, CompiledRule, GitsignIdentityRule } from './identity.js';
import { verifyLogBinding } from './log-binding.js';
import type { LogBindingResult, LogEntryToVerify, SignerCertificate } from './log-binding.js';
import { RekorLookupError, type RekorLogEntry, type RekorLookup } from './rekor-client.js';
import { TlogEntryDecodeError, decodeTransparencyLogEntry, hashedRekordBody, sha256 } from './tlog-entry.js';

export interface GitsignVerifyInput {
  /** Exact signed bytes: the raw commit without its gpgsig header (parseCommit().payload). */
  payload: Uint8Array;
  /** The armored signature (parseCommit().signature). */
  signature: string;
  /** The one parsed trusted root of the process (bundle-verify's createBundleTrust). */
  trust: BundleTrust;
  /** Allowed signers; empty means nobody (never "anyone"). */
  identities: GitsignIdentityRule[];
  /** Rekor search client, for signatures without an embedded log entry. */
  rekor?: RekorLookup;
}

type Reject = Extract<MethodResult, { ok: false }>;

class Rejection extends Error {
  constructor(
    readonly code: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function verifyGitsignCommitSignature(input: GitsignVerifyInput): Promise<MethodResult> {
  try {
    return await verifyOrThrow(input);
  } catch (err) {
    if (err instanceof Rejection) return reject(err.code, err.reason);
    if (err instanceof CmsError || err instanceof IdentityError) return reject(err.code, err.message);
    if (isDerError(err)) return reject('GITSIGN_SIGNATURE_MALFORMED', `signature is malformed: ${err.message}`);
    // Anything else is a bug or an input no check anticipated: still a rejection, never a crash or an accept.
    return reject('GITSIGN_VERIFY_ERROR', `gitsign verification failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function verifyOrThrow(input: GitsignVerifyInput): Promise<MethodResult> {
  const { trust } = input;
  if (!trust || !Array.isArray(trust.tlogs)) throw new Rejection('GITSIGN_NO_TRUST_ROOT', 'no Sigstore trust root was provided');
  const rules = compilePolicy(input.identities);
  if (!(input.payload instanceof Uint8Array)) throw new Rejection('GITSIGN_SIGNATURE_MALFORMED', 'payload is not bytes');
  const payload = Buffer.from(input.payload.buffer, input.payload.byteOffset, input.payload.byteLength);

  const cms = parseGitsignCms(decodeSignaturePem(input.signature));
  const evidence: string[] = [];

  // 1. The signed attributes are about THIS payload.
  checkSignedAttributes(cms, payload);
  evidence.push('CMS messageDigest attribute equals sha256 of the exact commit payload; contentType is id-data');

  // 2. The signer certificate, and the signature over the signed attributes with its key.
  const leaf = signerCertificate(cms);
  const key = leaf.key;
  if (!verifySignature(key, 'sha256', cms.signedAttrsDer, cms.signature)) {
    throw new Rejection('GITSIGN_SIGNATURE_INVALID', 'CMS signature over the signed attributes does not verify with the certificate key');
  }
  evidence.push(`CMS signature over the DER signed attributes verified with the certificate's ${describeKey(key)} key`);

  // 3. Identity before any log work: a signer the policy does not name needs no Rekor round trip.
  const identity = certificateIdentity(leaf.cert);
  const rule = rules.find((r) => r.matches(identity));
  if (!rule) {
    throw new Rejection(
      'GITSIGN_IDENTITY_MISMATCH',
      `signer ${identity.san} (issuer ${identity.issuer}) matches none of the ${rules.length} allowed identities`,
    );
  }

  // 4. The transparency-log entry: embedded, or looked up online.
  const tlogValue = singleAttributeValue(cms.unsignedAttrs, OID.rekorTlogEntry, 'Rekor log entry');
  const binding = tlogValue ? verifyEmbeddedEntry(trust, cms, leaf, tlogValue) : await verifyOnlineEntry(input, leaf);
  if (!binding.ok) throw new Rejection(binding.code, binding.reason);
  evidence.push(...binding.evidence);
  evidence.push(
    `certificate identity ${identity.san} (${identity.sanType}), issuer ${identity.issuer}, allowed by policy rule ${rule.describe}`,
  );

  return {
    ok: true,
    method: 'gitsign',
    signer: { identity: identity.san, issuer: identity.issuer, logIndex: binding.logIndex, signedAt: binding.integratedTime.toISOString() },
    evidence,
  };
}

function compilePolicy(identities: GitsignIdentityRule[]): CompiledRule[] {
  if (!Array.isArray(identities) || identities.length === 0) {
    throw new Rejection(
      'GITSIGN_NO_IDENTITY_POLICY',
      'no gitsign identities are allowed by policy, so no gitsign signature can be accepted',
    );
  }
  return identities.map((r) => compileRule(r));
}

function checkSignedAttributes(cms: GitsignCms, payload: Buffer): void {
  if (cms.digestAlgorithm !== OID.sha256) {
    throw new Rejection('GITSIGN_CMS_UNSUPPORTED', `unsupported CMS digest algorithm ${cms.digestAlgorithm} (gitsign uses SHA-256)`);
  }
  const contentType = singleAttributeValue(cms.signedAttrs, OID.contentType, 'contentType');
  if (!contentType || contentType.tag !== TAG.OID || decodeOid(contentType) !== OID.data) {
    throw new Rejection('GITSIGN_CMS_UNSUPPORTED', 'signed contentType attribute is missing or not id-data');
  }
  const digest = singleAttributeValue(cms.signedAttrs, OID.messageDigest, 'messageDigest');
  if (!digest || digest.tag !== TAG.OCTET_STRING)
    throw new Rejection('GITSIGN_CMS_UNSUPPORTED', 'signed messageDigest attribute is missing');
  const actual = sha256(payload);
  if (digest.content.length !== actual.length || !timingSafeEqual(digest.content, actual)) {
    throw new Rejection(
      'GITSIGN_PAYLOAD_DIGEST_MISMATCH',
      'signature is not over this commit: messageDigest differs from sha256 of the payload',
    );
  }
}

function signerCertificate(cms: GitsignCms): SignerCertificate {
  const candidates: SignerCertificate[] = [];
  for (const der of cms.certificates) {
    let parsed;
    try {
      parsed = parseCertificateCached(der);
    } catch {
      continue; // An unparseable extra certificate cannot be the signer; if it was, no candidate matches below.
    }
    const { cert } = parsed;
    const sid = cms.sid;
    const matches =
      'subjectKeyId' in sid
        ? cert.subjectKeyId !== undefined && Buffer.from(cert.subjectKeyId).equals(sid.subjectKeyId)
        : Buffer.from(cert.issuer).equals(sid.issuer) && Buffer.from(cert.serial).equals(sid.serial);
    if (matches) candidates.push({ der: Buffer.from(cert.der), cert, key: parsed.key });
  }
  if (candidates.length !== 1) {
    throw new Rejection(
      'GITSIGN_CERTIFICATE_MISSING',
      `CMS holds ${candidates.length} well-formed certificates matching the signer identifier; exactly one is required`,
    );
  }
  const leaf = candidates[0]!;
  // The Fulcio leaf profile (not a CA, digitalSignature, codeSigning, no unknown critical extension): bundle-verify's.
  try {
    checkLeafProfile(leaf.cert);
  } catch (err) {
    if (err instanceof VerifyError) throw new Rejection('GITSIGN_CERTIFICATE_INVALID', err.message);
    throw err;
  }

  const { key } = leaf;
  const alg = cms.signatureAlgorithm;
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== 'prime256v1' && curve !== 'secp384r1') throw new Rejection('GITSIGN_CMS_UNSUPPORTED', `unsupported EC curve ${curve}`);
    if (alg !== OID.ecdsaWithSha256 && alg !== OID.ecPublicKey)
      throw new Rejection('GITSIGN_CMS_UNSUPPORTED', `signature algorithm ${alg} does not fit an EC key`);
  } else if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
      throw new Rejection('GITSIGN_CMS_UNSUPPORTED', 'RSA key shorter than 2048 bits');
    if (alg !== OID.sha256WithRsa && alg !== OID.rsaEncryption)
      throw new Rejection('GITSIGN_CMS_UNSUPPORTED', `signature algorithm ${alg} does not fit an RSA key`);
  } else {
    throw new Rejection('GITSIGN_CMS_UNSUPPORTED', `unsupported signer key type ${key.asymmetricKeyType}`);
  }
  return leaf;
}

function describeKey(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec') return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ECDSA P-384' : 'ECDSA P-256';
  return `RSA-${key.asymmetricKeyDetails?.modulusLength ?? '?'}`;
}

// --- embedded ("offline") log entry -------------------------------------------------------------------------------

function verifyEmbeddedEntry(
  trust: BundleTrust,
  cms: GitsignCms,
  leaf: SignerCertificate,
  value: { tag: number; content: Buffer },
): LogBindingResult {
  // gitsign's current layout is one OCTET STRING holding a TransparencyLogEntry protobuf. An early experimental
  // layout put the log id here as a PrintableString (with the rest in sibling attributes); it carries no verifiable
  // body binding, so it is refused rather than half-checked.
  if (value.tag !== TAG.OCTET_STRING) {
    return {
      ok: false,
      code: 'GITSIGN_TLOG_ENTRY_UNSUPPORTED',
      reason: 'embedded Rekor entry uses an older experimental layout (not a TransparencyLogEntry) and cannot be verified offline',
    };
  }
  let decoded;
  try {
    decoded = decodeTransparencyLogEntry(value.content);
  } catch (err) {
    if (err instanceof TlogEntryDecodeError)
      return { ok: false, code: 'GITSIGN_TLOG_ENTRY_MALFORMED', reason: `embedded Rekor entry is malformed: ${err.message}` };
    throw err;
  }
  if ((decoded.kind ?? 'hashedrekord') !== 'hashedrekord' || (decoded.version ?? '0.0.1') !== '0.0.1') {
    return {
      ok: false,
      code: 'GITSIGN_TLOG_ENTRY_UNSUPPORTED',
      reason: `embedded Rekor entry kind ${decoded.kind}/${decoded.version} is not hashedrekord/0.0.1`,
    };
  }
  if (decoded.inclusionProof && decoded.inclusionProof.checkpoint === undefined) {
    return { ok: false, code: 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID', reason: 'embedded inclusion proof has no signed checkpoint' };
  }
  // The body is recomputed from what we verified; a log proof over any other body cannot verify against it.
  const body = hashedRekordBody(sha256(cms.signedAttrsDer), cms.signature, leaf.der);
  if (decoded.canonicalizedBody !== undefined && !decoded.canonicalizedBody.equals(body)) {
    return {
      ok: false,
      code: 'GITSIGN_TLOG_ENTRY_MISMATCH',
      reason: 'embedded Rekor entry body is not about this signature and certificate',
    };
  }
  const entry: LogEntryToVerify = {
    logIndex: decoded.logIndex,
    logId: decoded.logId,
    integratedTime: decoded.integratedTime,
    signedEntryTimestamp: decoded.signedEntryTimestamp,
    inclusionProof: decoded.inclusionProof && { ...decoded.inclusionProof, checkpoint: decoded.inclusionProof.checkpoint ?? '' },
    canonicalizedBody: body,
  };
  // The logged signature is the CMS signature over the signed attributes, verified with leaf.key in step 2.
  return verifyLogBinding({
    trust,
    leaf,
    artifact: cms.signedAttrsDer,
    signature: cms.signature,
    entry,
    artifactName: 'signed attributes',
    signatureVerified: true,
  });
}

// --- online log lookup ---------------------------------------------------------------------------------------------

async function verifyOnlineEntry(input: GitsignVerifyInput, leaf: SignerCertificate): Promise<LogBindingResult> {
  if (!input.rekor) {
    return {
      ok: false,
      code: 'GITSIGN_NEEDS_ONLINE_LOOKUP',
      reason: 'signature has no embedded Rekor entry and no Rekor client is configured: it can only be verified online',
    };
  }
  // Online-mode gitsign logs a second signature, over the commit id (which covers the CMS itself), keyed in Rekor on
  // sha256 of that id. Recompute the id from the payload and this signature.
  const commitId = commitObjectId(input.payload, input.signature);
  if (!commitId) {
    return { ok: false, code: 'GITSIGN_TLOG_ENTRY_NOT_FOUND', reason: 'cannot reconstruct the commit id to look up its Rekor entry' };
  }
  const artifact = Buffer.from(commitId, 'ascii');
  const artifactHash = sha256(artifact).toString('hex');
  let found: RekorLogEntry[];
  try {
    found = await input.rekor.findEntries({ hash: `sha256:${artifactHash}`, publicKeyPem: pem.fromDER(leaf.der, 'CERTIFICATE') });
  } catch (err) {
    // Rekor unreachable (or a lookup of unknown make that threw) is transient: the verifier retries and, if it lasts,
    // defers the commit; only an answer that will not change by asking again is a final rejection.
    const final = err instanceof RekorLookupError && !err.transient;
    return {
      ok: false,
      code: final ? 'GITSIGN_REKOR_LOOKUP_FAILED' : 'REKOR_UNAVAILABLE',
      reason: `signature has no embedded Rekor entry and the Rekor lookup failed (${err instanceof Error ? err.message : String(err)}): it can only be verified online`,
    };
  }

  let firstFailure: LogBindingResult | undefined;
  for (const candidate of Array.isArray(found) ? found : []) {
    const result = verifyOnlineCandidate(input.trust, leaf, artifact, artifactHash, candidate);
    if (result === undefined) continue;
    if (result.ok) {
      result.evidence.unshift(`Rekor entry ${candidate.uuid} found online for commit ${commitId}`);
      return result;
    }
    firstFailure ??= result;
  }
  return (
    firstFailure ?? {
      ok: false,
      code: 'GITSIGN_TLOG_ENTRY_NOT_FOUND',
      reason: `Rekor has no entry for commit ${commitId} signed by this certificate`,
    }
  );
}

/** undefined when the entry is simply about something else; a failure when it is ours but does not verify. */
function verifyOnlineCandidate(
  trust: BundleTrust,
  leaf: SignerCertificate,
  artifact: Buffer,
  artifactHash: string,
  e: RekorLogEntry,
): LogBindingResult | undefined {
  if (!e || typeof e.body !== 'string') return undefined;
  const bodyBytes = Buffer.from(e.body, 'base64');
  let body: unknown;
  try {
    body = JSON.parse(bodyBytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const b = body as {
    kind?: unknown;
    apiVersion?: unknown;
    spec?: {
      data?: { hash?: { algorithm?: unknown; value?: unknown } };
      signature?: { content?: unknown; publicKey?: { content?: unknown } };
    };
  };
  if (b?.kind !== 'hashedrekord' || b.apiVersion !== '0.0.1') return undefined;
  const hash = b.spec?.data?.hash;
  if (hash?.algorithm !== 'sha256' || hash.value !== artifactHash) return undefined;
  const pk = b.spec?.signature?.publicKey?.content;
  const sig = b.spec?.signature?.content;
  if (typeof pk !== 'string' || typeof sig !== 'string') return undefined;
  let loggedCert: Buffer;
  try {
    loggedCert = pem.toDER(Buffer.from(pk, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  // The entry must be by THIS certificate; the index query asked for that, but the index is not trusted.
  if (!loggedCert.equals(leaf.der)) return undefined;

  const v = e.verification;
  const proof = v?.inclusionProof;
  const entry: LogEntryToVerify = {
    logIndex: BigInt(e.logIndex),
    logId: Buffer.from(e.logID, 'hex'),
    integratedTime: BigInt(e.integratedTime),
    signedEntryTimestamp: v?.signedEntryTimestamp ? Buffer.from(v.signedEntryTimestamp, 'base64') : undefined,
    // A proof without a checkpoint (older Rekor answers) proves nothing by itself; the SET still has to verify.
    inclusionProof:
      proof && typeof proof.checkpoint === 'string'
        ? {
            logIndex: BigInt(proof.logIndex),
            rootHash: Buffer.from(proof.rootHash, 'hex'),
            treeSize: BigInt(proof.treeSize),
            hashes: proof.hashes.map((h) => Buffer.from(h, 'hex')),
            checkpoint: proof.checkpoint,
          }
        : undefined,
    canonicalizedBody: bodyBytes,
  };
  return verifyLogBinding({ trust, leaf, artifact, signature: Buffer.from(sig, 'base64'), entry, artifactName: 'commit id' });
}

/**
 * The git object id of the signed commit: the payload with the signature header put back where git puts it (last
 * header, right before the blank line). SHA-256 repositories are recognised by their 64-hex tree id.
 */
export function commitObjectId(payload: Uint8Array, signature: string): string | undefined {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const headerEnd = buf.indexOf('\n\n');
  if (headerEnd < 0) return undefined;
  const tree = /^tree ([0-9a-f]{40}|[0-9a-f]{64})\n/.exec(buf.subarray(0, 80).toString('latin1'));
  if (!tree) return undefined;
  const sha256Repo = tree[1]!.length === 64;
  const text = signature.endsWith('\n') ? signature.slice(0, -1) : signature;
  const header = Buffer.from(`${sha256Repo ? 'gpgsig-sha256' : 'gpgsig'} ${text.split('\n').join('\n ')}\n`, 'latin1');
  const raw = Buffer.concat([buf.subarray(0, headerEnd + 1), header, buf.subarray(headerEnd + 1)]);
  return createHash(sha256Repo ? 'sha256' : 'sha1')
    .update(`commit ${raw.length}\0`)
    .update(raw)
    .digest('hex');
}

function reject(code: string, reason: string): Reject {
  return { ok: false, method: 'gitsign', code, reason: reason.replace(/\s*\n\s*/g, ' ') };
}

export type { CertificateIdentity };
