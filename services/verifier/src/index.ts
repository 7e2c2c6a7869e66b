export * from './processor.js';
export * from './commit-checker.js';
export * from './verdict-cache.js';
export * from './image-checker.js';
export * from './checks.js';
