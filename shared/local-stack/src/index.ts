export * from './stack.js';
export * from './demo.js';
export * from './redis.js';
