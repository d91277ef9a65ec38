import type { LaunchSpec } from '../spec.js';

/** W&B splits env values above this length into `NAME_0..N` (SageMaker uses 512). */
export const MAX_ENV_VALUE_LENGTH = 32_670;

export interface RunEnvContext {
  spec: LaunchSpec;
  runId: string;
  itemId: string;
  queue: string;
  /** The agent's entity (`WANDB_LAUNCH_QUEUE_ENTITY`). */
  agentEntity?: string;
  image?: string;
  baseUrl?: string;
  apiKey?: string;
  maxValueLength?: number;
}

/**
 * The `WANDB_*` variables W&B injects into every run (`LaunchProject.get_env_vars_dict`), with
 * `WANDB_CONFIG` and `WANDB_LAUNCH_FILE_OVERRIDES` split into numbered chunks when too long.
 */
export function wandbRunEnv(ctx: RunEnvContext): Record<string, string> {
  const { spec } = ctx;
  const env: Record<string, string | undefined> = {};
  const specKey = spec._wandb_api_key ?? undefined;
  env.WANDB_BASE_URL = ctx.baseUrl;
  env.WANDB_API_KEY = specKey ?? ctx.apiKey;
  env.WANDB_PROJECT = spec.project ?? undefined;
  env.WANDB_ENTITY = spec.entity ?? undefined;
  env.WANDB_LAUNCH = 'True';
  env.WANDB_RUN_ID = ctx.runId;
  env.WANDB_DOCKER = ctx.image;
  env.WANDB_NAME = spec.name ?? undefined;
  // W&B only names the author when the run uses the agent's key, not the spec's own.
  if (!specKey) env.WANDB_USERNAME = spec.author ?? undefined;
  env.WANDB_SWEEP_ID = spec.sweep_id ?? undefined;
  if ((spec._resume_count ?? 0) > 0) env.WANDB_RESUME = 'allow';
  env.WANDB_LAUNCH_QUEUE_NAME = ctx.queue;
  env.WANDB_LAUNCH_QUEUE_ENTITY = ctx.agentEntity;
  env.WANDB_LAUNCH_TRACE_ID = ctx.itemId;

  const max = ctx.maxValueLength ?? MAX_ENV_VALUE_LENGTH;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  Object.assign(out, chunkedEnv('WANDB_CONFIG', JSON.stringify(spec.overrides?.run_config ?? {}), max));
  if (spec.overrides?.files && Object.keys(spec.overrides.files).length > 0) {
    Object.assign(out, chunkedEnv('WANDB_LAUNCH_FILE_OVERRIDES', JSON.stringify(spec.overrides.files), max));
  }
  if (spec.job || (spec.overrides?.artifacts && Object.keys(spec.overrides.artifacts).length > 0)) {
    out.WANDB_ARTIFACTS = JSON.stringify({ ...(spec.job ? { _wandb_job: spec.job } : {}), ...(spec.overrides?.artifacts ?? {}) });
  }
  return out;
}

/** `NAME=value`, or `NAME_0..NAME_N` chunks of at most `max` characters when the value is longer. */
export function chunkedEnv(name: string, value: string, max = MAX_ENV_VALUE_LENGTH): Record<string, string> {
  if (value.length <= max) return { [name]: value };
  const out: Record<string, string> = {};
  for (let i = 0, n = 0; i < value.length; i += max, n++) out[`${name}_${n}`] = value.slice(i, i + max);
  return out;
}

/** Reassembles a value split by `chunkedEnv` (what a run's SDK does). */
export function readChunkedEnv(name: string, env: Record<string, string | undefined>): string | undefined {
  if (env[name] !== undefined) return env[name];
  let out = '';
  for (let n = 0; env[`${name}_${n}`] !== undefined; n++) out += env[`${name}_${n}`];
  return out === '' ? undefined : out;
}
