export { main } from './main.js';
export { CLI_ERROR_CODES, UsageError, type Io } from './io.js';
