export * from './types.js';
export * from './commit.js';
export * from './ssh/index.js';
export * from './gpg/index.js';
export { verifyGitsignCommitSignature, createRekorClient, RekorLookupError } from './gitsign/index.js';
export type {
  GitsignVerifyInput,
  GitsignIdentityRule,
  CertificateIdentity,
  RekorLookup,
  RekorLogEntry,
  RekorSearchQuery,
  RekorClientOptions,
} from './gitsign/index.js';
export * from './verify-commit.js';
export * from './transience.js';
