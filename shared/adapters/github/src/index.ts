export * from './client.js';
export * from './identity.js';
export * from './report.js';
export * from './push-delivery.js';
export * from './from-config.js';
