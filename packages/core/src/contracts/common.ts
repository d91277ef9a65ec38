import type { Logger } from '../logger.js';

/** Every contract carries its version so a backend written today keeps working when a contract grows. */
export type SpecificationVersion = 'v1';

/**
 * What every backend call receives: a logger and an abort signal.
 *
 * What a backend may assume about `signal`:
 * - The agent passes one to every call it makes that takes a context: `Builder.build`, `Runner.run` and
 *   `Runner.adopt`. Other callers (a builder calling its registry or context store, tests) may omit it,
 *   so a backend treats a missing signal as "never aborted".
 * - It is aborted when the agent stops while the call is in flight, with a LaunchError (code
 *   `agent.stopping`) as its reason. The backend should then stop its work (kill a build, stop waiting
 *   on a submission) and reject; the agent hands the item back as stopped. A backend that finishes
 *   anyway is not wrong: the agent then treats the result as any other.
 * - It is never aborted after `Runner.run` resolved: a submitted run is stopped with
 *   `SubmittedRun.cancel()`, not through the signal. A backend must not tie a run's life to it.
 */
export interface CallContext {
  logger: Logger;
  signal?: AbortSignal;
}
