import type { QueueItem, QueueSource } from '../../contracts/queue-source.js';
import type { Stage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Priority } from '../../spec.js';
import type { QueueConfig } from '../queue-config.js';
import type { AgentStatus, RunState } from '../../status.js';

/** Options of {@link createEmbeddedQueue}. */
export interface EmbeddedQueueOptions {
  /** Root directory of the queue's files (see {@link defaultStateDir}). */
  stateDir: string;
  /**
   * How often subscribers are woken to look for items (ms) while a queue directory cannot be watched reliably
   * (its watch could not start or failed, or it is on a network or FUSE file system). Default 1000. While every
   * directory is watched nothing polls here; the agent's own poll (`capabilities.pollIntervalMs`, the larger of
   * this and 10,000) is the safety net.
   */
  pollIntervalMs?: number;
  /**
   * Claim lease (ms). Default 30 000. A claim whose lease expired and whose process is gone returns
   * to the queue; so does one whose lease expired more than another `leaseMs` ago (the pid may be
   * reused, or live on another host).
   */
  leaseMs?: number;
  /** Largest item file accepted (bytes); bigger items are failed, bigger specs refused. Default 16 MiB. */
  maxItemBytes?: number;
  /**
   * fsync item files (and their directory) when an item is enqueued or ends, so a power loss does not
   * lose them. Claims, acks and heartbeats are never fsynced: losing one only re-runs the item. Default true.
   */
  fsync?: boolean;
  /** Renew the leases of items this instance holds every `leaseMs / 3`, besides `heartbeat()`. Default true. */
  autoRenew?: boolean;
  logger?: Logger;
  /** Injectable clock (ms since the epoch). */
  now?: () => number;
  /** Host name recorded in claims and agent files. Default `os.hostname()`. */
  hostname?: string;
  /**
   * How many finished (or failed) items to keep for `status`, per queue: the newest `maxItems` by enqueue
   * order (default 10,000), none that ended more than `maxAgeMs` ago (default 7 days); either may be
   * `Infinity`. A record that ended within the last minute is always kept. `false` keeps every record.
   * Pruning runs in the background after an item ends (at most once a minute per queue instance) and on
   * {@link EmbeddedQueue.prune}; it never delays a pop.
   */
  retainDone?: false | { maxItems?: number; maxAgeMs?: number };
}

/** What {@link EmbeddedQueue.enqueue} takes. */
export interface EnqueueOptions {
  queue: string;
  /** Stored as given; the agent validates it when it runs the item. */
  spec: unknown;
  /** Default `medium`. */
  priority?: Priority;
  /** Id of the item this one replaces (preemption). Set by `requeue`; such a spec is stored as given (it was merged when first enqueued). */
  requeuedFrom?: string;
  /**
   * Values for the queue config's `{{variables}}` (W&B's `--set-var`), over the spec's own
   * `template_variables`. When the queue has a config, it is merged into the spec ({@link mergeQueueConfig})
   * and the result checked as the agent checks items; bad values or a conflicting spec throw a
   * LaunchValidationError and nothing is queued.
   */
  templateVariables?: Record<string, string | number>;
}

/** Where an item is in its life. */
export type ItemState = 'queued' | 'claimed' | 'acked' | 'finished' | 'failed';

/** A warning attached to an item. */
export interface ItemWarning {
  stage: string;
  message: string;
  at: string;
  files?: string[];
}

/** The record kept for every item, also after it ends, for status queries. */
export interface ItemRecord {
  id: string;
  queue: string;
  priority: Priority;
  state: ItemState;
  enqueuedAt: string;
  /** The raw spec as enqueued (undefined for an item whose file could not be read). */
  spec: unknown;
  claimedBy?: string;
  claimedPid?: number;
  claimedHost?: string;
  claimedAt?: string;
  leaseUntil?: string;
  ackedAt?: string;
  runId?: string;
  warnings: ItemWarning[];
  failure?: { stage: Stage; message: string; files?: string[]; at: string };
  finishedAt?: string;
  runState?: RunState;
  exitCode?: number | null;
  requeuedFrom?: string;
  /** How many times the item was claimed. Above 1 means an earlier claim was lost (its agent died). */
  attempts: number;
}

/** An agent's status file (`agents/<id>.json`). */
export interface AgentRecord {
  id: string;
  name: string;
  hostname: string;
  pid: number;
  status: AgentStatus;
  queues: string[];
  version?: string;
  registeredAt: string;
  updatedAt: string;
  /** Whether the process is alive; known only for agents on this host. */
  alive?: boolean;
}

/** The embedded durable queue: a {@link QueueSource} plus the operations the CLI needs. */
export interface EmbeddedQueue extends QueueSource {
  readonly stateDir: string;
  // The optional QueueSource members this source always has.
  shouldStop(agentId: string): Promise<boolean>;
  subscribe(listener: () => void): () => void;
  heartbeat(agentId: string, items: QueueItem[]): Promise<void>;
  release(item: QueueItem): Promise<void>;
  /** Stops watchers and timers; claims stay on disk (leases end unless the process goes on). */
  close(): Promise<void>;
  enqueue(options: EnqueueOptions): Promise<ItemRecord>;
  list(filter?: { queue?: string; state?: ItemState }): Promise<ItemRecord[]>;
  /**
   * One item by id, wherever it is (queued, claimed or done). The id gives the item's file name, so this
   * opens a few files whatever the number of items (ids of items written by older versions are looked up
   * by listing the queues' directories). Undefined for an unknown id, or a finished item already pruned.
   */
  get(id: string): Promise<ItemRecord | undefined>;
  /**
   * How many items are waiting, claimed (or acked) and done, from directory listings alone: cheap
   * enough to call every loop (unlike `list`, which reads every record).
   */
  counts(filter?: { queue?: string }): Promise<{ queued: number; claimed: number; done: number }>;
  /** Returns claims of dead agents to the queue; returns how many. Also run automatically on pop. */
  recoverExpired(): Promise<number>;
  /** Removes finished records beyond `retainDone` now; returns how many. Also run in the background as items end. */
  prune(): Promise<number>;
  /** Asks the agent running an item to stop it; `idOrRunId` is an item id or a run id. */
  requestStop(idOrRunId: string): Promise<void>;
  /** Asks an agent to stop polling and shut down (the agent sees it through `shouldStop`). */
  requestAgentStop(agentId: string): Promise<void>;
  /** The agents' status files, newest first. */
  listAgents(): Promise<AgentRecord[]>;
  /** The queue's config (W&B's queue config: resource, resource_args template, template variables), if it has one. */
  getQueueConfig(queue: string): Promise<QueueConfig | undefined>;
  /**
   * Validates (`parseQueueConfig`) and stores a queue's config, atomically. `create` (the default) refuses a
   * queue that has one (code `queue_config.exists`); `upsert` replaces it. Items already queued keep the spec
   * they were merged with.
   */
  setQueueConfig(queue: string, config: unknown, mode?: 'create' | 'upsert'): Promise<QueueConfig>;
  /** Every stored queue config; one that cannot be read or fails the checks comes with `problem`. */
  listQueueConfigs(): Promise<{ queue: string; config?: QueueConfig; problem?: string }[]>;
  /** Removes a queue's config (its items stay); false when it had none. */
  deleteQueueConfig(queue: string): Promise<boolean>;
}
