/**
 * Which failed W&B requests may be sent again, per GraphQL operation: the one table to review when
 * an operation is added. See docs/wandb.md ("Retries") for the reasoning in prose.
 *
 * - `any-failure`: retried on network errors, timeouts, HTTP 408, 429 and 5xx (up to
 *   `maxAttempts`). Right for queries, and for mutations whose repetition leaves the same state.
 * - `unsent-only`: retried only when the request provably did not reach the server (it was never
 *   written to a connection: refused, DNS failure, TLS handshake failure, connect timeout; see
 *   transport.ts) or when the answer says the server did not act (HTTP 408, 429, 503). Any other
 *   failure after the request was written (a reset, a timeout, 500/502/504) is "outcome unknown":
 *   the client then runs the operation's read-back (`recovery`) instead of sending it again.
 */
export type RetryRule = 'any-failure' | 'unsent-only';

export interface OperationPolicy {
  kind: 'query' | 'mutation';
  retry: RetryRule;
  /** What the client does when the outcome is unknown (for `unsent-only`) or a repeat is refused. */
  recovery?: string;
  /** Why this rule is safe. */
  why: string;
}

/** Operation name (as sent in the document) → retry rule. */
export const OPERATION_POLICY = {
  Viewer: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  EntityIsTeam: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  ProjectRunQueues: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  LaunchAgent: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  RunStoppedStatus: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  RunState: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  ArtifactMembershipByName: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  ArtifactByID: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  FetchArtifactManifest: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  GetArtifactMembershipFileUrls: { kind: 'query', retry: 'any-failure', why: 'read-only' },
  GetRunQueueItems: { kind: 'query', retry: 'any-failure', why: 'read-only (the read-back of the recoveries below)' },

  updateLaunchAgent: {
    kind: 'mutation',
    retry: 'any-failure',
    why: 'sets the agent status to a given value; sending it again sets the same value and refreshes heartbeatAt, which is what the call is for',
  },
  failRunQueueItem: {
    kind: 'mutation',
    retry: 'any-failure',
    why: 'moves the item to FAILED with the given message, stage and files; a repeat ends in the same state (the item is already FAILED with the same failure)',
  },
  updateRunQueueItemWarning: {
    kind: 'mutation',
    retry: 'any-failure',
    why: 'appends a warning to the item: a repeat after a lost reply can show the same warning twice, which is cosmetic; losing the warning would not be',
  },
  createLaunchAgent: {
    kind: 'mutation',
    retry: 'any-failure',
    why: 'a repeat after a lost reply leaves one unused agent record in the UI, and no work: items are leased to the agent id the agent got back and uses. Not retrying would fail the start-up, after which a restart registers again anyway',
  },
  ackRunQueueItem: {
    kind: 'mutation',
    retry: 'any-failure',
    recovery:
      'a repeat of an ack that took effect answers success:false; the client then reads the item back (GetRunQueueItems) and reports the ack as done when the item is CLAIMED with the same run name',
    why: 'acks one leased item with one run name; the repeat cannot claim anything else',
  },
  pushToRunQueueByName: {
    kind: 'mutation',
    retry: 'unsent-only',
    recovery:
      'the spec carries a fresh `_launch_push_id`; after an unknown outcome the client reads the queue back: an item with that id is the result; none means not created, and the push is sent again (same id); an item with the same content but no id, or a read-back that cannot be completed, ends in a `wandb.outcome_unknown` error naming the id to look for',
    why: 'each call creates an item: a blind repeat can enqueue the job twice',
  },
  popFromRunQueue: {
    kind: 'mutation',
    retry: 'unsent-only',
    recovery:
      'after an unknown outcome (and once this client’s other pops settled) the client reads the queue back for an item LEASED to this agent that no pop of this client returned recently, and returns it; otherwise it fails the call: an item leased by a lost reply goes back to the queue when its lease expires (about a minute on W&B)',
    why: 'each call leases the next item: a blind repeat leases a second one and orphans the first until its lease expires',
  },
  createRunQueue: {
    kind: 'mutation',
    retry: 'unsent-only',
    recovery:
      'after an unknown outcome the client lists the project’s queues: a queue of that name is the result; none means not created, and it is sent again once',
    why: 'a repeat of a create that took effect fails with "already exists"',
  },
} as const satisfies Record<string, OperationPolicy>;

export type OperationName = keyof typeof OPERATION_POLICY;

/**
 * The rule for one request. An operation missing from the table is retried only when unsent if
 * its document is a mutation (or cannot be read), and on any failure if it is a query.
 */
export function retryRuleFor(operation: string | undefined, document?: string): RetryRule {
  if (operation && Object.hasOwn(OPERATION_POLICY, operation)) return OPERATION_POLICY[operation as OperationName].retry;
  if (typeof document === 'string' && /^\s*(?:query\b|\{)/.test(document)) return 'any-failure';
  return 'unsent-only';
}

/** Statuses that say the server did not act on the request: 408 (it did not receive it whole), 429 (throttled), 503 (unavailable). */
export function statusSaysNotActed(status: number): boolean {
  return status === 408 || status === 429 || status === 503;
}
