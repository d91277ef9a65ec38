/**
 * @launch/builders: image builders for Launch jobs.
 *
 * @packageDocumentation
 */
export * from './noop/index.js';
