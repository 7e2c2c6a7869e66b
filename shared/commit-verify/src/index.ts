export * from './types.js';
export * from './commit.js';
export * from './ssh/index.js';
export * from './verify-commit.js';
