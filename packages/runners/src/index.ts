/**
 * @launch/runners: runners that start and track Launch jobs (local processes; Kubernetes).
 *
 * @packageDocumentation
 */
export { parseRunRequest } from './run-request.js';
export * from './local-process/index.js';
export * from './kubernetes/index.js';
