import type { Logger } from '../logger.js';

/** Every contract carries its version so a backend written today keeps working when a contract grows. */
export type SpecificationVersion = 'v1';

/** What every backend call receives: a logger and an abort signal. */
export interface CallContext {
  logger: Logger;
  signal?: AbortSignal;
}
