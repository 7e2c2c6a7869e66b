export * from './types.js';
export * from './commit.js';
