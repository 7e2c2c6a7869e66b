export { createBundleTrust, loadPublicGoodTrustedRoot } from './trust.js';
export type { BundleTrust, CaChain, CtLog, TimeRange, TimestampAuthority, TlogInstance } from './trust.js';
export { createBundleVerifier } from './verifier.js';
export type { Artifact, BundleSigner, BundleVerdict, BundleVerifier, SignerPolicy } from './verifier.js';
export type { Statement } from './dsse.js';
export { VERIFY_ERROR_CODES, VerifyError, type VerifyErrorCode } from './errors.js';
export { runConformanceCli } from './cli.js';
export type { CliIo } from './cli.js';

// Building blocks for other Sigstore signature formats (gitsign's CMS commit signatures in @gitops-gate/commit-verify):
// one DER reader, one X.509 model, one chain/SCT/transparency-log implementation for every verifier in the project.
export { TAG, children, expectTag, raw, readNode, readOid, readRoot, readSmallInt, value } from './der.js';
export type { DerNode } from './der.js';
export { OID as X509_OID, findExtension, parseCertificate } from './x509.js';
export type { Certificate, Extension } from './x509.js';
export { BoundedCache, certSignedBy, clearMemo, parseCertificateCached } from './memo.js';
export type { ParsedCertificate } from './memo.js';
export { keyKind, sha256, verifySignature, verifyWithAlgOid } from './keys.js';
export type { HashName, KeyKind } from './keys.js';
export { checkLeafProfile, verifyLeafChain } from './chain.js';
export { verifyScts } from './sct.js';
export { checkBody, checkLoggedVerifier, verifyInclusion } from './tlog.js';
export type { IncludedEntry, LoggedVerifier } from './tlog.js';
export type { InclusionProof, TlogEntry } from './bundle.js';
