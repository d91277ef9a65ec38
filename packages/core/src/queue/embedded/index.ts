/**
 * The embedded durable queue: the default `QueueSource`, one file per item on a local disk.
 * @module
 */
export { createEmbeddedQueue, DEFAULT_RETAIN_DONE } from './queue.js';
export { defaultStateDir } from './layout.js';
export type { AgentRecord, EmbeddedQueue, EmbeddedQueueOptions, EnqueueOptions, ItemRecord, ItemState, ItemWarning } from './types.js';
