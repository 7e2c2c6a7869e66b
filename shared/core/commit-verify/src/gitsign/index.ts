/** gitsign (Sigstore keyless, CMS) commit signatures. */
export { verifyGitsignCommitSignature, commitObjectId } from './verify.js';
export type { GitsignVerifyInput } from './verify.js';
export type { GitsignIdentityRule, CertificateIdentity } from './identity.js';
export { createRekorClient, RekorLookupError } from './rekor-client.js';
export type { RekorLookup, RekorLogEntry, RekorSearchQuery, RekorClientOptions } from './rekor-client.js';
