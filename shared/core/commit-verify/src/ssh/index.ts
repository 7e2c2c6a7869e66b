export { parseAllowedSigners } from './allowed-signers.js';
export type { AllowedSigner } from './allowed-signers.js';
export { sshPublicKeyFingerprint } from './keys.js';
export { verifySshCommitSignature, SSH_REJECT_CODES } from './verify.js';
export type { SshVerifyInput, SshRejectCode } from './verify.js';
export { parseRevocationList, SshRevocationListError, SSH_REVOCATION_ERROR_CODES } from './revocation.js';
export type { SshRevocationList, SshRevocationErrorCode } from './revocation.js';
