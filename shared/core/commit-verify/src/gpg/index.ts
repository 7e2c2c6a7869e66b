export { createGpgKeyring, type GpgKeyring, type GpgKeyringEntry } from './keyring.js';
export { verifyGpgCommitSignature, normalizeGpgFingerprint, type VerifyGpgCommitSignatureInput } from './verify.js';
