export * from './processor.js';
export * from './commit-checker.js';
export * from './verdict-cache.js';
