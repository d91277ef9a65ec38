/**
 * @launch/builders: image builders for Launch jobs, and the build context they share (W&B's
 * precedence, deterministic streamed packing, source-hash tags).
 *
 * The docker builder loads dockerode only when it first talks to the engine, so importing this
 * package stays light.
 *
 * @packageDocumentation
 */
export * from './noop/index.js';
export * from './context/index.js';
export * from './docker/index.js';
export * from './kaniko/index.js';
