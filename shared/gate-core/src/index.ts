export * from './applications.js';
export * from './audit.js';
export * from './decide.js';
export * from './gate.js';
export * from './kube.js';
export * from './lock.js';
export * from './policies.js';
export * from './policy-watcher.js';
