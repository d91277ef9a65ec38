import type { RunRequest, Runner } from './contracts/index.js';
import { fillMacros, macroVars } from './agent/macros.js';
import { wandbRunEnv } from './agent/run-env.js';
import type { LaunchSpec } from './spec.js';

/** What {@link planRun} needs besides the spec: the agent's side of the request. */
export interface PlanRunOptions {
  runId: string;
  item: { id: string; queue: string };
  /** The image the job runs in (built or named), filling `${image_uri}`. */
  image?: string;
  /** The entry point the builder chose, when it made one (it wins over `overrides.entry_point`). */
  entryPoint?: string[];
  /** The resource whose `resource_args` entry the runner gets. */
  resource: string;
  /** Decides whether the run inherits the agent's environment (local, image-less runners only). */
  runner: Pick<Runner, 'capabilities'>;
  agentName: string;
  /** The agent's environment: macro variables, and the base environment of local runs. */
  env: Record<string, string | undefined>;
  /** The agent's entity (`WANDB_LAUNCH_QUEUE_ENTITY`). */
  entity?: string;
  baseUrl?: string;
  apiKey?: string;
}

/**
 * The run request the agent sends a runner for one queue item: W&B's macros (`${run_id}`, `${image_uri}`, any
 * agent environment variable, …) filled through `resource_args[resource]` (its `builder` sub-key removed) and
 * `additional_services`, the `WANDB_*` environment injected, the spec's own `env` last. Pure: the same inputs give
 * the same request, so a dry run shows exactly what the agent submits.
 */
export function planRun(spec: LaunchSpec, o: PlanRunOptions): RunRequest {
  const vars = macroVars(o.env, {
    project: spec.project,
    entity: spec.entity,
    runId: o.runId,
    runName: spec.name,
    image: o.image,
    author: spec.author,
  });
  // The `builder` sub-key configures the build, not the runner (W&B pops it).
  const { builder: _builder, ...rawArgs } = (spec.resource_args?.[o.resource] ?? {}) as Record<string, unknown>;
  const resourceArgs = fillMacros(rawArgs, vars);
  const filledSpec: LaunchSpec = spec.additional_services ? { ...spec, additional_services: fillMacros(spec.additional_services, vars) } : spec;
  const wandbEnv = wandbRunEnv({
    spec,
    runId: o.runId,
    itemId: o.item.id,
    queue: o.item.queue,
    agentEntity: o.entity,
    image: o.image,
    baseUrl: o.baseUrl ?? o.env.WANDB_BASE_URL,
    apiKey: o.apiKey ?? o.env.WANDB_API_KEY,
  });
  // Runs on the agent's host inherit its environment (PATH, HOME, …) as W&B's local-process runner does;
  // runs in an image (containers, remote clusters) get only what the job defines.
  const base: Record<string, string> = {};
  if (!o.runner.capabilities.remote && !o.runner.capabilities.needsImage) {
    for (const [k, v] of Object.entries(o.env)) if (v !== undefined) base[k] = v;
  }
  return {
    runId: o.runId,
    itemId: o.item.id,
    queue: o.item.queue,
    agentName: o.agentName,
    spec: filledSpec,
    image: o.image,
    // The builder's choice wins when it made one: it already weighed the override against the job's own.
    entryPoint: o.entryPoint ?? spec.overrides?.entry_point ?? [],
    args: spec.overrides?.args ?? [],
    env: { ...base, ...wandbEnv, ...(spec.env ?? {}) },
    resourceArgs,
    workingDir: spec.overrides?.working_dir ?? undefined,
  };
}
