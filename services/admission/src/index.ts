export * from './decide.js';
export * from './review.js';
export * from './app.js';
export * from './sources.js';
export * from './audit.js';
export * from './result-cache.js';
