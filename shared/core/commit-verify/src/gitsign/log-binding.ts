/**
 * Proves that a (certificate, signature, artifact) triple was logged in a trusted Rekor while the certificate was
 * valid: the log body names exactly this certificate, signature and artifact digest; the signed entry timestamp and
 * (when present) the inclusion proof verify against the trusted root's keys for that log; the certificate chains to a
 * trusted Fulcio CA at the log's integrated time and carries a verifiable SCT.
 *
 * Every one of those checks is @gitops-gate/bundle-verify's (the same code that verifies Sigstore bundles): this file
 * only feeds it gitsign's entry and maps its rejection codes to gitsign's.
 */
import type { KeyObject } from 'node:crypto';
import {
  VerifyError,
  checkBody,
  checkLoggedVerifier,
  sha256,
  verifyInclusion,
  verifyLeafChain,
  verifyScts,
  verifySignature,
} from '@gitops-gate/bundle-verify';
import type { BundleTrust, Certificate, InclusionProof, TlogEntry } from '@gitops-gate/bundle-verify';

/** The signer's Fulcio certificate: exact DER, parsed view and public key. */
export interface SignerCertificate {
  der: Buffer;
  cert: Certificate;
  key: KeyObject;
}

export interface LogEntryToVerify {
  logIndex: bigint;
  logId: Buffer;
  integratedTime: bigint;
  signedEntryTimestamp: Buffer | undefined;
  inclusionProof: InclusionProof | undefined;
  /** The exact body bytes the log committed to. */
  canonicalizedBody: Buffer;
}

export interface LogBindingInput {
  trust: BundleTrust;
  leaf: SignerCertificate;
  /** The bytes that were signed and logged (gitsign offline: DER signed attributes; online: the commit id). */
  artifact: Buffer;
  signature: Buffer;
  entry: LogEntryToVerify;
  /** What the artifact is, for messages. */
  artifactName: string;
  /**
   * True when the caller has already verified exactly this signature over exactly this artifact with leaf.key (the
   * offline entry logs the CMS signature over the signed attributes, which verify.ts checked a moment earlier).
   */
  signatureVerified?: boolean;
  /** Current time in ms (an integrated time in the future is refused); defaults to Date.now(). */
  nowMs?: number;
}

export type LogBindingResult =
  { ok: true; integratedTime: Date; logIndex: string; logIdHex: string; evidence: string[] } | { ok: false; code: string; reason: string };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// bundle-verify's codes → gitsign's (one list per package; the reason text is kept).
const TLOG_CODES: Record<string, string> = {
  TLOG_UNTRUSTED: 'GITSIGN_TLOG_UNKNOWN_LOG',
  CHECKPOINT_INVALID: 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID',
  INCLUSION_PROOF_INVALID: 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID',
};

export function verifyLogBinding(input: LogBindingInput): LogBindingResult {
  try {
    return bind(input);
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return fail(codeFor(err.code), err.message);
  }
}

function codeFor(code: string): string {
  const mapped = TLOG_CODES[code];
  if (mapped !== undefined) return mapped;
  if (code.startsWith('SCT_')) return 'GITSIGN_CERT_SCT_INVALID';
  if (code.startsWith('CERTIFICATE_') || code === 'KEY_INVALID' || code === 'DER_INVALID') return 'GITSIGN_CERT_CHAIN_UNTRUSTED';
  if (code.startsWith('TLOG_') || code.startsWith('SET_') || code === 'INTEGRATED_TIME_IN_FUTURE') return 'GITSIGN_TLOG_SET_INVALID';
  return 'GITSIGN_VERIFY_ERROR';
}

function bind(input: LogBindingInput): LogBindingResult {
  const { trust, leaf, entry } = input;
  const logIdHex = entry.logId.toString('hex');
  if (!trust.tlogs.some((t) => t.logId.equals(entry.logId))) {
    return fail('GITSIGN_TLOG_UNKNOWN_LOG', `log entry is from log ${logIdHex}, which is not in the trusted root`);
  }
  // Only the signed entry timestamp makes the integrated time a fact the log vouches for; without it there is no
  // trusted signing time to check the 10-minute certificate against.
  const set = entry.signedEntryTimestamp;
  if (!set || set.length === 0) {
    return fail('GITSIGN_TLOG_NO_SIGNED_TIME', 'log entry has no signed entry timestamp, so its integrated time is unproven');
  }
  // The SET payload carries these as JSON numbers; beyond 2^53 they could not be reproduced exactly.
  if (entry.logIndex > MAX_SAFE || entry.integratedTime > MAX_SAFE || entry.integratedTime <= 0n) {
    return fail('GITSIGN_TLOG_ENTRY_MALFORMED', 'log entry index or integrated time is out of range');
  }
  const integratedMs = Number(entry.integratedTime) * 1000;
  const integratedTime = new Date(integratedMs);
  if (Number.isNaN(integratedTime.getTime())) return fail('GITSIGN_TLOG_ENTRY_MALFORMED', 'log entry integrated time is out of range');

  const { notBefore, notAfter } = leaf.cert;
  if (integratedMs < notBefore || integratedMs > notAfter) {
    return fail(
      'GITSIGN_CERT_NOT_VALID_AT_INTEGRATED_TIME',
      `certificate is valid ${iso(notBefore)}..${iso(notAfter)} but the log integrated the entry at ${integratedTime.toISOString()}`,
    );
  }

  const tlogEntry: TlogEntry = {
    logIndex: entry.logIndex,
    logId: entry.logId,
    kind: 'hashedrekord',
    version: '0.0.1',
    integratedTime: entry.integratedTime,
    signedEntryTimestamp: set,
    body: entry.canonicalizedBody,
  };
  if (entry.inclusionProof) tlogEntry.inclusionProof = entry.inclusionProof;

  try {
    const logged = checkBody(tlogEntry, { kind: 'message', hash: 'sha256', digest: sha256(input.artifact), signature: input.signature });
    checkLoggedVerifier(logged, leaf.der, leaf.key);
  } catch (err) {
    if (err instanceof VerifyError) return fail('GITSIGN_TLOG_ENTRY_MISMATCH', `log entry does not bind this signature: ${err.message}`);
    throw err;
  }
  if (input.signatureVerified !== true && !verifySignature(leaf.key, 'sha256', input.artifact, input.signature)) {
    return fail('GITSIGN_TLOG_ENTRY_MISMATCH', `logged signature over the ${input.artifactName} does not verify with the certificate key`);
  }

  // SET and checkpoint, each from a key of this log valid at the integrated time (bundle-verify's tlog code).
  try {
    verifyInclusion(tlogEntry, trust, input.nowMs ?? Date.now());
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    const code = codeFor(err.code);
    const what =
      code === 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID'
        ? 'inclusion proof does not verify'
        : `signed entry timestamp does not verify against a key of log ${logIdHex} valid at ${integratedTime.toISOString()}`;
    return fail(code, `${what}: ${err.message}`);
  }

  let issuer: Certificate;
  try {
    ({ issuer } = verifyLeafChain(leaf.cert, [integratedMs], trust));
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return fail(
      'GITSIGN_CERT_CHAIN_UNTRUSTED',
      `certificate does not chain to a trusted Fulcio CA at ${integratedTime.toISOString()}: ${err.message}`,
    );
  }
  // A trusted root without CT logs (a private deployment) cannot demand SCTs; the public-good root has them, and then
  // every Fulcio certificate must carry a verifiable one.
  let scts = 0;
  if (trust.ctlogs.length > 0) {
    try {
      scts = verifyScts(leaf.cert, issuer, trust);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      return fail('GITSIGN_CERT_SCT_INVALID', `certificate transparency check failed: ${err.message}`);
    }
  }

  const evidence = [
    `Rekor entry ${entry.logIndex} in log ${logIdHex} names this certificate, this signature and the sha256 of the ${input.artifactName}`,
    `signed entry timestamp verified against the trusted log key: integrated ${integratedTime.toISOString()}`,
  ];
  if (entry.inclusionProof) {
    evidence.push(
      `inclusion proof verified against a signed checkpoint (tree size ${entry.inclusionProof.treeSize}, leaf ${entry.inclusionProof.logIndex})`,
    );
  }
  evidence.push(
    'certificate chains to a trusted Fulcio CA at the integrated time' +
      (trust.ctlogs.length > 0 ? `, ${scts} SCT(s) verified` : ' (trusted root has no CT logs; SCT not required)'),
    `integrated time lies within certificate validity ${iso(notBefore)}..${iso(notAfter)}`,
  );
  return { ok: true, integratedTime, logIndex: entry.logIndex.toString(), logIdHex, evidence };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function fail(code: string, reason: string): { ok: false; code: string; reason: string } {
  return { ok: false, code, reason };
}
