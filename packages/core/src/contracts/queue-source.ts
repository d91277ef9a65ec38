import type { Stage } from '../errors.js';
import type { Priority } from '../spec.js';
import type { AgentStatus, RunState } from '../status.js';
import type { SpecificationVersion } from './common.js';

/** A claimed item as a source hands it out. `spec` is raw and untrusted: the agent validates it. */
export interface QueueItem {
  /** The run-queue item id (W&B's `runQueueItemId`). */
  id: string;
  /** The queue it was popped from. */
  queue: string;
  spec: unknown;
  priority?: Priority;
  /** ISO time it was enqueued, when the source knows it. */
  enqueuedAt?: string;
  /**
   * Set when an earlier claim acked this item and was then lost (its agent died): the run it started
   * may still exist in a remote backend. The agent then follows that run instead of starting another.
   */
  previousRun?: { runId: string; agent?: string };
}

export interface AgentInfo {
  /** Queue names this agent serves. */
  queues: string[];
  entity?: string;
  hostname: string;
  version: string;
  /** The agent config as sent to W&B's `createLaunchAgent` (secrets removed). */
  config: Record<string, unknown>;
}

export interface AgentRegistration {
  /** Id the source uses for this agent (W&B's `launchAgentId`). */
  id: string;
  /** Human name; the Kubernetes runner labels jobs with it. */
  name: string;
}

export interface FailureReport {
  stage: Stage;
  message: string;
  /** Paths of files saved with the failure (logs), relative or absolute as the source prefers. */
  files?: string[];
}

export interface WarningReport {
  /** Free-form stage such as `Kubernetes` or `build` (W&B uses these). */
  stage: string;
  message: string;
  files?: string[];
}

export interface FinishReport {
  state: RunState;
  exitCode?: number | null;
  runId: string;
}

/** Identifies a run in the tracking backend, for stop requests. */
export interface RunRef {
  entity?: string | null;
  project?: string | null;
  runId: string;
  itemId: string;
  queue: string;
}

export interface QueueSourceCapabilities {
  /** The source calls `subscribe` listeners when work may have arrived, so the agent can sleep until woken. */
  notify: boolean;
  /** How long the agent waits between polls when idle (ms). W&B polls every 10 s. */
  pollIntervalMs: number;
  /**
   * Items may name code in a directory of the agent's machine (`uri: file:///…`) for the builder to build.
   * Only a source whose items come from the same machine and its users may say so (the embedded queue):
   * from a remote queue such an item could pack any directory of the agent's host into an image.
   */
  localCode?: boolean;
}

/**
 * Where jobs come from: the embedded on-disk queue, W&B's Launch API, or your own.
 * All methods may throw; the agent treats a throwing `pop` as "no job" and logs it.
 */
export interface QueueSource {
  readonly specificationVersion: SpecificationVersion;
  /** e.g. `embedded`, `wandb`. */
  readonly name: string;
  readonly capabilities: QueueSourceCapabilities;

  /** Registers the agent; resolves queue names (throws a clear error naming missing queues). */
  register(agent: AgentInfo): Promise<AgentRegistration>;
  /** Claims the next item of `queue` for `agentId`, or null when the queue is empty. */
  pop(queue: string, agentId: string): Promise<QueueItem | null>;
  /** Acknowledges a claimed item; from now on the source will not hand it out again. */
  ack(item: QueueItem, runId: string): Promise<void>;
  /** Marks the item failed with its stage and message. */
  fail(item: QueueItem, failure: FailureReport): Promise<void>;
  /** Attaches a warning to the item (e.g. a diagnosis while the run goes on). */
  warn(item: QueueItem, warning: WarningReport): Promise<void>;
  /** Records the item's end. Sources without such a record (W&B learns it from the run) may ignore it. */
  finish(item: QueueItem, result: FinishReport): Promise<void>;
  /**
   * Hands a claimed but not yet acknowledged item back to the queue (e.g. a sweep scheduler while
   * `max_schedulers` are running). Sources without it let the claim expire (W&B: about a minute).
   */
  release?(item: QueueItem): Promise<void>;
  /** Puts the spec back on the same queue (preemption); returns the new item's id. */
  requeue(item: QueueItem, spec: Record<string, unknown>): Promise<string>;
  /** Reports POLLING / RUNNING / KILLED. */
  updateAgentStatus(agentId: string, status: AgentStatus): Promise<void>;
  /** Whether the operator asked the agent to stop (W&B's `launchAgent.stopPolling`). */
  shouldStop?(agentId: string): Promise<boolean>;
  /** Whether the user asked to stop this run (W&B's `project.run.stopped`). */
  isRunStopped(run: RunRef): Promise<boolean>;
  /** Calls `listener` when work may have arrived (capability `notify`). Returns an unsubscribe function. */
  subscribe?(listener: () => void): () => void;
  /** Extends the claim on running items so that other agents do not take them back (embedded queue leases). */
  heartbeat?(agentId: string, items: QueueItem[]): Promise<void>;
  close?(): Promise<void>;
}
