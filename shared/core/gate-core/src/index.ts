import { KUBE_ERROR_CODES } from './application-store.js';
export * from './applications.js';
export * from './application-store.js';
export * from './audit.js';
export * from './audit-verify.js';
export * from './audit-trim.js';
export * from './decide.js';
export * from './gate.js';
export * from './logger.js';
export * from './lock.js';
export * from '@gitops-gate/policy';
export * from './policy-apps.js';
export * from './policy-watch.js';
export * from './policy-status.js';
export * from './reconcile.js';
export * from './images.js';
export * from './checkpoint.js';
export * from './image-policies.js';
export * from './followed-repos.js';
export * from './replicated-audit.js';

// Every code gate-core's errors carry (KubeError, PinPatchError, CheckpointError, LockTimeoutError, PolicyWatchError).
export const GATE_CORE_ERROR_CODES = [
  ...KUBE_ERROR_CODES,
  'NO_RESOURCE_VERSION',
  'CHECKPOINT_KEY_INVALID',
  'CHECKPOINT_MALFORMED',
  'CHECKPOINT_UNVERIFIED',
  'LOCK_TIMEOUT',
  'POLICIES_NOT_SYNCED',
] as const;
export * from './rate-limit.js';
export * from './coalesce.js';
