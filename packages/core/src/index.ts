/**
 * @launch/core: the contracts every backend implements, the embedded durable queue, the agent
 * config, and `createAgent()`.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './logger.js';
export * from './redact.js';
export * from './spec.js';
export * from './status.js';
export * from './validation.js';
export type * from './contracts/index.js';
export type * from './agent/types.js';
export * from './agent/index.js';
export * from './config/index.js';
export * from './queue/embedded/index.js';
export * from './plan-run.js';
export * from './queue/queue-config.js';
export * from './queue/template-vars.js';
