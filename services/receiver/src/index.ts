export * from './app.js';
export * from './intake.js';
export * from './github-events.js';
