/**
 * @launch/testkit (private): shared conformance suites and test servers that speak real wire protocols.
 */
export * from './conformance/runner.js';
export * from './conformance/queue-source.js';
export * from './wandb-server/index.js';
export * from './kube/index.js';
export * from './scripted-runner.js';
export * from './memory-queue.js';
export * from './wait.js';
export * from './services/env.js';
export * from './conformance/registry.js';
export * from './conformance/builder.js';
export * from './conformance/context-store.js';
export * from './loopback-guard.js';
