export {
  COSTLY_REJECTIONS,
  IMAGE_MATERIAL_TOO_LARGE,
  IMAGE_VERIFY_DEADLINE,
  OCI_ERROR_CODES,
  OciError,
  createByteBudget,
  isTransient,
  type OciErrorCode,
} from './errors.js';
export type { ByteBudget, JobLimits } from './errors.js';
export { parseImageName, parseSha256Digest } from './reference.js';
export type { ImageName } from './reference.js';
export { parseWwwAuthenticate } from './www-authenticate.js';
export type { Challenge } from './www-authenticate.js';
export { MEDIA_TYPES, createRegistryClient, parseDescriptor } from './registry.js';
export type {
  Descriptor,
  FetchedManifest,
  ReferrersResult,
  RegistryClient,
  RegistryClientOptions,
  RegistryCredential,
} from './registry.js';
export {
  COSIGN_ANNOTATIONS,
  COSIGN_SIMPLE_SIGNING,
  DEFAULT_MAX_SIGNATURE_BYTES,
  DSSE_ENVELOPE,
  SIGSTORE_BUNDLE_V03,
  discoverSigstoreMaterial,
} from './discover.js';
export type { DiscoverOptions, Discovery, MaterialProblem, MaterialSource, SigstoreMaterial } from './discover.js';
export {
  PROVENANCE_ERROR_CODES,
  ProvenanceError,
  type ProvenanceErrorCode,
  SLSA_PROVENANCE_TYPES,
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
  builderMatchesSigner,
  readProvenance,
  repositoryFromUri,
} from './provenance.js';
export type { ProvenanceFacts } from './provenance.js';
export {
  DEFAULT_IMAGE_DEADLINE_MS,
  DEFAULT_MAX_IMAGE_BYTES,
  IMAGE_REJECT_CODES,
  createImageVerifier,
  refNameMatches,
  type ImageRejectCode,
} from './verify-image.js';
export type {
  ImageRequirement,
  ImageSource,
  ImageVerdict,
  ImageVerifier,
  ImageVerifierOptions,
  ProvenanceSummary,
  SignatureCheck,
} from './verify-image.js';
