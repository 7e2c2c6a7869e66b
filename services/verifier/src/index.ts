export * from './processor.js';
export * from './commit-checker.js';
