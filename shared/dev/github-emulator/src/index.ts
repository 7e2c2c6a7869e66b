export * from './api.js';
export * from './git-host.js';
