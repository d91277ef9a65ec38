export type * from './common.js';
export type * from './queue-source.js';
export type * from './runner.js';
export type * from './builder.js';
export type * from './registry.js';
export type * from './context-store.js';
export type * from './job-resolver.js';
