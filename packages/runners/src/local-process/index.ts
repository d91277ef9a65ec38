export { createLocalProcessRunner, type LocalProcessRunner } from './runner.js';
export { localProcessRunnerOptionsSchema, type LocalProcessRunnerOptions } from './options.js';
export { logFileName } from './log-file.js';
