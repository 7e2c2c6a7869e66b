// The gate's Redis and Kubernetes adapters: implementations of gate-core's ports (ApplicationStore, KeyedLock,
// AuditTrail, ImageState, ReconcileMarks, the policy watch). Their errors are gate-core's (KubeError,
// LockTimeoutError, PolicyWatchError): this package adds no codes of its own.
export * from './app-cache.js';
export * from './audit-retention.js';
export * from './audit-trail.js';
export * from './image-state.js';
export * from './kube.js';
export * from './policy-snapshot.js';
export * from './policy-status.js';
export * from './policy-watcher.js';
export * from './reconcile-marks.js';
export * from './redis-lock.js';

export const GATE_STORE_ERROR_CODES = [] as const;
