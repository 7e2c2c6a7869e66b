export * from './stack.js';
export * from './demo.js';
export * from './redis.js';
export * from './argo-writer.js';
export * from './demo-stack.js';
