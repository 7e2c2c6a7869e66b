export * from './types.js';
export { createSandboxApiServer, SandboxError, PRODUCTION_WATCHES } from './server.js';
export {
  argoApplicationKind,
  namespaceKind,
  gatePolicyKind,
  clusterGatePolicyKind,
  demoApplication,
  BRANCH_ANNOTATION,
  schemaErrorsToProblems,
} from './kinds.js';
export { StatusError, type Status, type StatusCause, type StatusDetails } from './status.js';
export { renderKubeconfig } from './kubeconfig.js';
export { createServingCertificate, type ServingCertificate } from './tls.js';
export { kindFromCrd, kindFromCrdFile, CrdError } from './crd.js';
export { SANDBOX_ERROR_CODES, type SandboxErrorCode } from './errors.js';
export { createStructuralSchema, type StructuralSchema, type SchemaNode } from './structural.js';
export { validatingWebhookConfigurationKind, runValidatingWebhooks } from './admission.js';
export { podKind, workloadKinds } from './workloads.js';
