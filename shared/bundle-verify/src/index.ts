export { createBundleTrust, loadPublicGoodTrustedRoot } from './trust.js';
export type { BundleTrust, CaChain, CtLog, TimeRange, TimestampAuthority, TlogInstance } from './trust.js';
export { createBundleVerifier } from './verifier.js';
export type { Artifact, BundleSigner, BundleVerdict, BundleVerifier, SignerPolicy } from './verifier.js';
export type { Statement } from './dsse.js';
export { VERIFY_ERROR_CODES, VerifyError, type VerifyErrorCode } from './errors.js';
export { runConformanceCli } from './cli.js';
export type { CliIo } from './cli.js';
