import type { ValidationIssue } from './errors.js';

/**
 * Documents people hand to `enqueue` as a launch spec that are something else: a W&B sweep config
 * or a Dagster run config wrapping W&B's launch op. Each gets one message that says what it is and
 * what to do, instead of a list of unknown keys.
 */

const SWEEP_METHODS = new Set(['grid', 'random', 'bayes', 'custom']);
const SWEEP_ONLY_KEYS = ['method', 'metric', 'parameters', 'early_terminate', 'run_cap', 'program'];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sweepConfig(raw: Record<string, unknown>): boolean {
  const method = raw['method'];
  if (typeof method === 'string' && SWEEP_METHODS.has(method)) return true;
  return isPlainObject(raw['parameters']) && (isPlainObject(raw['metric']) || 'program' in raw || 'command' in raw || 'method' in raw);
}

/** The op names of a Dagster run config whose op config looks like dagster-wandb's launch op. */
function dagsterOps(raw: Record<string, unknown>): string[] | undefined {
  const ops = raw['ops'];
  const resources = raw['resources'];
  const hasWandbResource = isPlainObject(resources) && ('wandb_config' in resources || 'wandb_resource' in resources);
  if (!isPlainObject(ops)) return hasWandbResource ? [] : undefined;
  const names = Object.keys(ops).filter((name) => isPlainObject(ops[name]) && isPlainObject((ops[name] as Record<string, unknown>)['config']));
  return names.length > 0 || hasWandbResource ? names : undefined;
}

/** One issue naming what the document is and what to do, or undefined when it may be a spec. */
export function recognizeForeignSpec(raw: Record<string, unknown>): ValidationIssue | undefined {
  if (sweepConfig(raw)) {
    const keys = SWEEP_ONLY_KEYS.filter((k) => k in raw);
    return {
      path: '',
      expected: 'a launch spec',
      found: `a W&B sweep config (${keys.join(', ')})`,
      message:
        `expected a launch spec, found a W&B sweep config (${keys.join(', ')}): a sweep is not enqueued as a job. ` +
        'Create it with `wandb launch-sweep <config> --queue <queue>`, which puts a sweep scheduler on the queue; the scheduler then enqueues one launch spec per run',
    };
  }
  const ops = dagsterOps(raw);
  if (ops !== undefined) {
    const where = ops.length > 0 ? ops.map((op) => `ops.${op}.config`).join(', ') : 'ops.<op>.config';
    return {
      path: '',
      expected: 'a launch spec',
      found: 'a Dagster run config (ops, resources)',
      message:
        `expected a launch spec, found a Dagster run config (ops, resources): its launch parameters are under ${where}, in dagster-wandb's form. ` +
        'Write them as a launch spec: job or docker.docker_image, overrides.entry_point for entry_point, overrides.run_config for config, git.version for version, and the queue as the enqueue queue (docs/launch-spec.md)',
    };
  }
  return undefined;
}
