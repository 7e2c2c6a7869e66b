export * from './processor.js';
export * from './audit-routes.js';
