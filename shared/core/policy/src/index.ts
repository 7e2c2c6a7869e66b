export * from './errors.js';
export * from './policy.js';
export * from './policy-text.js';
export * from './crd.js';
export * from './commit-evaluation.js';
export * from './selection.js';
export * from './policy-objects.js';
export * from './status.js';
