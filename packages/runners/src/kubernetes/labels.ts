import { createHash } from 'node:crypto';

/** Labels and annotations the runner puts on every object it creates. */
export const LABEL = {
  runId: 'wandb.ai/run-id',
  monitor: 'wandb.ai/monitor',
  agent: 'wandb.ai/agent',
  createdBy: 'wandb.ai/created-by',
  auxiliary: 'wandb.ai/auxiliary-resource',
  /** Deterministic per queue item: the key for idempotent creation and adoption. */
  itemId: 'launch.dev/item-id',
} as const;

export const ANNOTATION = {
  itemId: 'launch.dev/item-id',
  runId: 'launch.dev/run-id',
  queue: 'launch.dev/queue',
  spec: 'launch.dev/spec',
  /** Comma-separated secrets made for the run alone (deleted when it ends). */
  secrets: 'launch.dev/secrets',
  /** JSON list of the run's `additional_services` objects (deleted when it ends). */
  services: 'launch.dev/services',
} as const;

export const CREATED_BY = 'launch-agent';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * A valid label value for any string: unchanged when already valid, otherwise a readable prefix plus a hash,
 * so distinct inputs (queue item ids are often base64 with `=`) never collide.
 */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 20);
  const prefix = value
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 40)
    .replace(/[^A-Za-z0-9]+$/, '');
  return prefix ? `${prefix}-${hash}` : hash;
}

/** W&B's `make_name_dns_safe`: lower case, `_` to `-`, only `[a-z0-9-.]`, no doubled or edge dashes. */
export function dnsSafe(name: string, max = 63): string {
  const out = name
    .toLowerCase()
    .replace(/[_\s]+/g, '-')
    .replace(/[^a-z0-9.-]+/g, '')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+/, '')
    .slice(0, max)
    .replace(/[-.]+$/, '');
  return out;
}

/** The label selector of everything one agent monitors. */
export function monitorSelector(agentName: string): string {
  return `${LABEL.monitor}=true,${LABEL.agent}=${labelValue(agentName)}`;
}
