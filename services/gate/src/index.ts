export * from './processor.js';
export * from './audit-routes.js';
export * from './ui/index.js';
export * from './ops-app.js';
