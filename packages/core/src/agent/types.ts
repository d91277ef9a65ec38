import type { Builder } from '../contracts/builder.js';
import type { JobResolver } from '../contracts/job-resolver.js';
import type { ContextStore } from '../contracts/context-store.js';
import type { QueueItem, QueueSource } from '../contracts/queue-source.js';
import type { Registry } from '../contracts/registry.js';
import type { LogChunk, RunStatus, Runner } from '../contracts/runner.js';
import type { LaunchError, Stage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Redactor } from '../redact.js';
import type { AgentStatus, RunState } from '../status.js';

/** A clock, injectable so tests control time. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface AgentOptions {
  source: QueueSource;
  /** Queue names served round robin. */
  queues: string[];
  /** One runner per resource kind; the spec's `resource` selects (default `local-process`… see `defaultResource`). */
  runners: Runner[];
  builder?: Builder;
  registry?: Registry;
  contextStore?: ContextStore;
  /**
   * Reads the W&B job an item names (`job: entity/project/name:alias`) and fetches its code. Without one, an
   * item with a `job` and no image fails at stage `agent` saying so.
   */
  jobResolver?: JobResolver;
  /**
   * The agent's entity: sent to the source at registration and given to runs as
   * `WANDB_LAUNCH_QUEUE_ENTITY` (W&B's queue entity is the agent's).
   */
  entity?: string;
  /** Concurrent jobs; -1 means no limit. Default 1. */
  maxJobs?: number;
  /** Concurrent sweep schedulers; -1 means no limit. Default 1. */
  maxSchedulers?: number;
  /** Seconds between a stop request and `cancel()`. Default 60. */
  stoppedRunTimeout?: number;
  /** Seconds a run may stay `starting`/`unknown` before it is cancelled; <= 0 disables. Default 1800. */
  startTimeout?: number;
  /** How often (ms) running jobs are checked for stop requests and timeouts. Default 10 000. */
  monitorIntervalMs?: number;
  /** Overrides the source's poll interval (ms). */
  pollIntervalMs?: number;
  /** Resource used when a spec names none. Default `local-process`. */
  defaultResource?: string;
  /** Agent-side environment, used for macros and `WANDB_BASE_URL`/`WANDB_API_KEY`. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** API key injected into runs as `WANDB_API_KEY` unless the spec carries its own. */
  apiKey?: string;
  /** Base URL injected as `WANDB_BASE_URL`. */
  baseUrl?: string;
  /** Times a preempted run is requeued. Default 5. */
  maxResumeCount?: number;
  /** Agent version string (W&B: `wandb@<ver>` or `WANDB_AGENT_VERSION`). */
  version?: string;
  hostname?: string;
  /** The config sent at registration (secrets removed by the agent). */
  config?: Record<string, unknown>;
  logger?: Logger;
  /**
   * The redactor the agent registers secrets in: the API key and secret-looking `env` values for its
   * life, each job's spec secrets (a {@link Redactor.scope}) from its claim until the agent stops tracking
   * it. Pass the one your log sinks use, so they hide a running job's secrets too. Default: a new one.
   */
  redactor?: Redactor;
  clock?: Clock;
  /** Directory where failure logs are written (`<dir>/<itemId>/error.log`). */
  filesDir?: string;
  /** W&B's `secure_mode`: also refuses `overrides.entry_point` (and runners refuse more). */
  secureMode?: boolean;
  /**
   * When the agent shuts down and terminates local runs, put their items back on the queue so a
   * restarted agent runs them (same run id). Default true.
   */
  requeueOnShutdown?: boolean;
}

/** Typed events for embedders. */
export interface AgentEvents {
  'agent:registered': { agentId: string; name: string };
  'agent:status': { status: AgentStatus };
  'item:claimed': { item: QueueItem };
  'build:started': { item: QueueItem; runId: string };
  'build:progress': { item: QueueItem; runId: string; line: string };
  'build:finished': { item: QueueItem; runId: string; imageUri: string; cached: boolean };
  'run:submitted': { item: QueueItem; runId: string; runner: string; backendId: string };
  'run:state': { item: QueueItem; runId: string; state: RunState; status: RunStatus };
  /** A run's output, from runners that stream it; only for runs submitted while a `run:log` listener exists. */
  'run:log': { item: QueueItem; runId: string; chunk: LogChunk };
  'run:warning': { item: QueueItem; runId?: string; message: string };
  'item:finished': { item: QueueItem; runId: string; state: RunState; status: RunStatus };
  'item:failed': { item: QueueItem; runId?: string; stage: Stage; message: string };
  'item:requeued': { item: QueueItem; runId: string; newItemId: string; resumeCount: number };
  'agent:error': { error: Error; where: string };
  /**
   * A loop turn ended: `pops` pops made at once (0 when every slot was busy), `items` of them returned an item.
   * Fires on every turn, so it also tells health checks that the loop is alive.
   */
  'agent:poll': { pops: number; items: number; durationMs: number };
  /** A poll found no work and no job is running. */
  'agent:idle': Record<string, never>;
  'agent:stopped': AgentStopped;
}

/**
 * Why the agent stopped, as a value to act on (an exit code) rather than a sentence to parse:
 * - `requested`: `Agent.stop()` was called (by the embedder: a signal, an idle check, a test);
 * - `source`: the queue source asked the agent to stop (`QueueSource.shouldStop`, W&B's `stopPolling`);
 * - `fatal`: the agent could not go on (its loop failed); `error` says why.
 */
export type AgentStopCause = 'requested' | 'source' | 'fatal';

export interface AgentStopped {
  /** Free text for people: the `stop()` argument, or what the agent saw. */
  reason: string;
  cause: AgentStopCause;
  /** With cause `fatal`: the failure, secrets removed from its message. */
  error?: LaunchError;
}

export type AgentEventName = keyof AgentEvents;

export interface RunningJob {
  item: QueueItem;
  runId: string;
  state: RunState;
  scheduler: boolean;
  startedAt: number;
  backendId?: string;
}

export interface AgentSnapshot {
  agentId?: string;
  name?: string;
  status: AgentStatus | 'STARTING' | 'STOPPED';
  running: RunningJob[];
  maxJobs: number;
  maxSchedulers: number;
}

export interface Agent {
  /**
   * Registers with the source and starts the loop. Resolves once the loop runs. A started agent keeps the
   * Node.js process alive (as a listening server does) until it has stopped.
   */
  start(): Promise<void>;
  /**
   * Stops taking work and reports KILLED. Local runs are terminated through `SubmittedRun.cancel()` (the
   * local runners send TERM, then KILL after the grace period they were created with); remote runs keep
   * running; builds and submissions in flight are aborted through their call's signal. Emits
   * `agent:stopped` with cause `requested` (unless the agent was already stopping for another cause).
   * Resolves when done.
   */
  stop(reason?: string): Promise<void>;
  /** Resolves when the agent has stopped (by `stop()`, a source's stop request, or a fatal error). */
  readonly stopped: Promise<void>;
  on<E extends AgentEventName>(event: E, listener: (payload: AgentEvents[E]) => void): () => void;
  snapshot(): AgentSnapshot;
}
