/**
 * @launch/runners: runners that start and track Launch jobs.
 *
 * The root entry is light: it holds the local-process runner only. The runners with heavy clients
 * load through their own subpaths, so an agent pays for a client only when it uses that backend:
 * `@launch/runners/kubernetes` (`@kubernetes/client-node`) and `@launch/runners/local-container`
 * (dockerode). `@launch/runners/local-process` is the same as this root entry.
 *
 * @packageDocumentation
 */
export { parseRunRequest } from './run-request.js';
export * from './local-process/index.js';
