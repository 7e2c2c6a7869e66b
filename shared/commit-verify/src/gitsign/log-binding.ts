/**
 * Proves that a (certificate, signature, artifact) triple was logged in a trusted Rekor while the certificate was
 * valid: the log body names exactly this certificate, signature and artifact digest; the signed entry timestamp and
 * (when present) the inclusion proof verify against the trusted root's keys for that log; the certificate chains to a
 * trusted Fulcio CA at the log's integrated time and carries a verifiable SCT.
 *
 * This is the check sigstore-go / @sigstore/verify perform on a message-signature bundle; it is done here directly
 * over the DER so the trusted CA chains are verified once per process instead of on every commit (the differential
 * test runs @sigstore/verify's Verifier on the same inputs).
 */
import { verify as cryptoVerify } from 'node:crypto';
import { pem } from '@sigstore/core';
import type { SigstoreTrust } from '../sigstore-trust.js';
import { verifyEmbeddedScts, verifyFulcioChain } from './chain.js';
import { verifyInclusionProof, verifySignedEntryTimestamp } from './log-proof.js';
import type { InclusionProofInput } from './log-proof.js';
import { sha256 } from './tlog-entry.js';
import type { CertInfo } from './x509.js';

export interface LogEntryToVerify {
  logIndex: bigint;
  logId: Buffer;
  integratedTime: bigint;
  signedEntryTimestamp: Buffer | undefined;
  inclusionProof: InclusionProofInput | undefined;
  /** The exact body bytes the log committed to. */
  canonicalizedBody: Buffer;
}

export interface LogBindingInput {
  trust: SigstoreTrust;
  leaf: CertInfo;
  /** The bytes that were signed and logged (gitsign offline: DER signed attributes; online: the commit id). */
  artifact: Buffer;
  signature: Buffer;
  entry: LogEntryToVerify;
  /** What the artifact is, for messages. */
  artifactName: string;
}

export type LogBindingResult =
  | { ok: true; integratedTime: Date; logIndex: string; logIdHex: string; evidence: string[] }
  | { ok: false; code: string; reason: string };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function verifyLogBinding(input: LogBindingInput): LogBindingResult {
  const { trust, leaf, entry } = input;
  const logIdHex = entry.logId.toString('hex');

  const logKeys = trust.tlogsByLogId.get(logIdHex);
  if (!logKeys) return fail('GITSIGN_TLOG_UNKNOWN_LOG', `log entry is from log ${logIdHex}, which is not in the trusted root`);
  // Only the signed entry timestamp makes the integrated time a fact the log vouches for; without it there is no
  // trusted signing time to check the 10-minute certificate against.
  const set = entry.signedEntryTimestamp;
  if (!set || set.length === 0) {
    return fail('GITSIGN_TLOG_NO_SIGNED_TIME', 'log entry has no signed entry timestamp, so its integrated time is unproven');
  }
  // The SET payload carries these as JSON numbers; beyond 2^53 they could not be reproduced exactly.
  if (entry.logIndex > MAX_SAFE || entry.integratedTime > MAX_SAFE || entry.integratedTime === 0n) {
    return fail('GITSIGN_TLOG_ENTRY_MALFORMED', 'log entry index or integrated time is out of range');
  }
  const integratedTime = new Date(Number(entry.integratedTime) * 1000);
  if (Number.isNaN(integratedTime.getTime())) return fail('GITSIGN_TLOG_ENTRY_MALFORMED', 'log entry integrated time is out of range');

  const { notBefore, notAfter } = leaf.cert;
  if (integratedTime < notBefore || integratedTime > notAfter) {
    return fail(
      'GITSIGN_CERT_NOT_VALID_AT_INTEGRATED_TIME',
      `certificate is valid ${notBefore.toISOString()}..${notAfter.toISOString()} but the log integrated the entry at ${integratedTime.toISOString()}`,
    );
  }

  const mismatch = bodyMismatch(entry.canonicalizedBody, sha256(input.artifact), input.signature, leaf.der);
  if (mismatch) return fail('GITSIGN_TLOG_ENTRY_MISMATCH', `log entry does not bind this signature: ${mismatch}`);
  if (!verifyArtifactSignature(input)) {
    return fail('GITSIGN_TLOG_ENTRY_MISMATCH', `logged signature over the ${input.artifactName} does not verify with the certificate key`);
  }

  // Both the SET and the checkpoint must come from a key of this log that was valid when the entry was integrated.
  const keysAtTime = logKeys.filter((k) => integratedTime >= k.validFor.start && integratedTime <= k.validFor.end);
  if (!verifySignedEntryTimestamp(keysAtTime, { body: entry.canonicalizedBody, integratedTime: entry.integratedTime, logIndex: entry.logIndex, logId: entry.logId }, set)) {
    return fail('GITSIGN_TLOG_SET_INVALID', `signed entry timestamp does not verify against a key of log ${logIdHex} valid at ${integratedTime.toISOString()}`);
  }
  if (entry.inclusionProof) {
    const problem = verifyInclusionProof(keysAtTime, entry.canonicalizedBody, entry.inclusionProof);
    if (problem) return fail('GITSIGN_TLOG_INCLUSION_PROOF_INVALID', `inclusion proof does not verify: ${problem}`);
  }

  const chain = verifyFulcioChain(trust, leaf, integratedTime);
  if (!chain.ok) {
    return fail('GITSIGN_CERT_CHAIN_UNTRUSTED', `certificate does not chain to a trusted Fulcio CA at ${integratedTime.toISOString()}: ${chain.reason}`);
  }
  // A trusted root without CT logs (a private deployment) cannot demand SCTs; the public-good root has them, and then
  // every Fulcio certificate must carry a verifiable one.
  const sct = verifyEmbeddedScts(trust.ctlogs, leaf, chain.issuer, trust.ctlogs.length > 0 ? 1 : 0);
  if (!sct.ok) return fail('GITSIGN_CERT_SCT_INVALID', `certificate transparency check failed: ${sct.reason}`);

  const evidence = [
    `Rekor entry ${entry.logIndex} in log ${logIdHex} names this certificate, this signature and the sha256 of the ${input.artifactName}`,
    `signed entry timestamp verified against the trusted log key: integrated ${integratedTime.toISOString()}`,
  ];
  if (entry.inclusionProof) {
    evidence.push(`inclusion proof verified against a signed checkpoint (tree size ${entry.inclusionProof.treeSize}, leaf ${entry.inclusionProof.logIndex})`);
  }
  evidence.push(
    `certificate chains to a trusted Fulcio CA (${chain.path.length} CA certificate(s)) at the integrated time` +
      (trust.ctlogs.length > 0 ? `, ${sct.verified} SCT(s) verified` : ' (trusted root has no CT logs; SCT not required)'),
    `integrated time lies within certificate validity ${notBefore.toISOString()}..${notAfter.toISOString()}`,
  );
  return { ok: true, integratedTime, logIndex: entry.logIndex.toString(), logIdHex, evidence };
}

/** undefined when the hashedrekord v0.0.1 body is exactly about (digest, signature, certificate). */
function bodyMismatch(body: Buffer, digest: Buffer, signature: Buffer, certDer: Buffer): string | undefined {
  let b: {
    kind?: unknown;
    apiVersion?: unknown;
    spec?: { data?: { hash?: { algorithm?: unknown; value?: unknown } }; signature?: { content?: unknown; publicKey?: { content?: unknown } } };
  };
  try {
    b = JSON.parse(body.toString('utf8')) as typeof b;
  } catch {
    return 'body is not JSON';
  }
  if (b?.kind !== 'hashedrekord' || b.apiVersion !== '0.0.1') return 'body is not a hashedrekord v0.0.1 entry';
  const hash = b.spec?.data?.hash;
  if (hash?.algorithm !== 'sha256' || hash.value !== digest.toString('hex')) return 'artifact digest differs';
  const sig = b.spec?.signature?.content;
  if (typeof sig !== 'string' || !Buffer.from(sig, 'base64').equals(signature)) return 'signature differs';
  const pk = b.spec?.signature?.publicKey?.content;
  if (typeof pk !== 'string') return 'body names no certificate';
  let logged: Buffer;
  try {
    logged = pem.toDER(Buffer.from(pk, 'base64').toString('utf8'));
  } catch {
    return 'body certificate is malformed';
  }
  if (!logged.equals(certDer)) return 'certificate differs';
  return undefined;
}

function verifyArtifactSignature(input: LogBindingInput): boolean {
  try {
    return cryptoVerify('sha256', input.artifact, input.leaf.key, input.signature);
  } catch {
    return false;
  }
}

function fail(code: string, reason: string): { ok: false; code: string; reason: string } {
  return { ok: false, code, reason };
}
