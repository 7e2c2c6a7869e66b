export * from './redis.js';
export * from './git.js';
export * from './webhooks.js';
export * from './registry.js';
export * from './redis-topologies.js';
