import { createHash } from 'node:crypto';
import type { RunRequest } from '@launch/core';

/** Labels the runner puts on every container it creates. */
export const LABEL = {
  /** The queue item: with the container name, the key for idempotent creation and adoption. */
  itemId: 'launch.dev/item-id',
  runId: 'launch.dev/run-id',
  /** The agent name; `adopt(agentName)` and the orphan guard select by it. */
  agent: 'launch.dev/agent',
  queue: 'launch.dev/queue',
  /** The launch spec without `_wandb_api_key`, so a restarted agent can report an adopted item. */
  spec: 'launch.dev/spec',
  /** `true` when the container is removed once its outcome is known (`rm`). */
  remove: 'launch.dev/remove',
  createdBy: 'launch.dev/created-by',
} as const;

export const CREATED_BY = 'launch-agent';

/** Above this the spec is left out of the labels (the engine keeps labels in every inspect and list answer). */
const MAX_SPEC_LABEL = 64 * 1024;

/**
 * The container name for a queue item: `launch-<item id>` when the id is a valid Docker name, otherwise a
 * readable prefix plus a hash of the id. Deterministic, so the engine itself refuses (409) a second
 * container for the same item.
 */
export function containerName(itemId: string): string {
  const plain = `launch-${itemId}`;
  if (plain.length <= 128 && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(plain)) return plain;
  const prefix = itemId
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .slice(0, 48)
    .replace(/[-.]+$/, '');
  const hash = createHash('sha256').update(itemId).digest('hex').slice(0, 20);
  return `launch-${prefix ? `${prefix}-` : ''}${hash}`;
}

/** The labels of one run's container (user labels first: ours always win). */
export function runLabels(request: RunRequest, agentName: string, remove: boolean, userLabels: Record<string, string>): Record<string, string> {
  const labels: Record<string, string> = {
    ...userLabels,
    [LABEL.itemId]: request.itemId,
    [LABEL.runId]: request.runId,
    [LABEL.agent]: agentName,
    [LABEL.queue]: request.queue,
    [LABEL.remove]: String(remove),
    [LABEL.createdBy]: CREATED_BY,
  };
  // The API key is a secret: it is in the container's environment (as with W&B's `docker run -e`), never in a label.
  const { _wandb_api_key: _key, ...rest } = request.spec as Record<string, unknown>;
  const spec = JSON.stringify(rest);
  if (spec.length <= MAX_SPEC_LABEL) labels[LABEL.spec] = spec;
  return labels;
}

export function parseSpecLabel(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
