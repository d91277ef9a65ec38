import { z } from 'zod';
import { LaunchValidationError } from './errors.js';
import { zodIssues } from './validation.js';

/**
 * The launch spec (W&B's `runSpec`). Known fields are type-checked; unknown fields are kept
 * (W&B servers add fields over time). Our extensions: `env` (extra environment for the run).
 */
const stringList = z.array(z.string().max(1_000_000));

export const launchSpecSchema = z
  .object({
    uri: z.string().nullish(),
    job: z.string().nullish(),
    entity: z.string().nullish(),
    project: z.string().nullish(),
    name: z.string().nullish(),
    author: z.string().nullish(),
    run_id: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'a run id of letters, digits, ".", "_" or "-" (at most 128)').nullish(),
    sweep_id: z.string().nullish(),
    _resume_count: z.number().int().min(0).nullish(),
    _wandb_api_key: z.string().nullish(),
    python_version: z.string().nullish(),
    image_uri: z.string().nullish(),
    docker: z
      .object({ docker_image: z.string().nullish(), user_id: z.union([z.number(), z.string()]).nullish() })
      .passthrough()
      .nullish(),
    git: z.object({ version: z.string().nullish(), repo: z.string().nullish() }).passthrough().nullish(),
    overrides: z
      .object({
        args: stringList.nullish(),
        run_config: z.record(z.string(), z.unknown()).nullish(),
        artifacts: z.record(z.string(), z.unknown()).nullish(),
        files: z.record(z.string(), z.unknown()).nullish(),
        entry_point: stringList.nullish(),
        dockerfile: z.string().nullish(),
        working_dir: z.string().nullish(),
      })
      .passthrough()
      .nullish(),
    resource: z.string().nullish(),
    resource_args: z.record(z.string(), z.unknown()).nullish(),
    additional_services: z.array(z.object({ config: z.record(z.string(), z.unknown()) }).passthrough()).nullish(),
    builder: z.unknown().optional(),
    template_variables: z.record(z.string(), z.unknown()).nullish(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string()).nullish(),
  })
  .passthrough();

export type LaunchSpec = z.infer<typeof launchSpecSchema>;

/** Validates a raw spec from a queue; throws a LaunchValidationError naming every bad field (stage `agent`). */
export function parseLaunchSpec(raw: unknown): LaunchSpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LaunchValidationError({
      code: 'spec.invalid',
      stage: 'agent',
      subject: 'launch spec',
      hint: 'a queue item must carry a JSON object as its run spec',
      issues: [
        {
          path: '',
          expected: 'an object',
          found: raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw,
          message: `expected an object, found ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`,
        },
      ],
    });
  }
  const result = launchSpecSchema.safeParse(raw);
  if (!result.success) {
    throw new LaunchValidationError({
      code: 'spec.invalid',
      stage: 'agent',
      subject: 'launch spec',
      issues: zodIssues(result.error, raw),
    });
  }
  return result.data;
}

/** The image a spec names directly (`docker.docker_image` or `image_uri`), if any. */
export function specImage(spec: LaunchSpec): string | undefined {
  return spec.docker?.docker_image ?? spec.image_uri ?? undefined;
}

/** The `uri` W&B puts on sweep-scheduler items. */
export const SCHEDULER_URI = 'placeholder-uri-scheduler';

/**
 * Whether an item is a sweep scheduler, which counts against `max_schedulers` instead of `max_jobs`.
 * W&B's rule (`_is_scheduler_job`): the placeholder uri, and for `resource: local-process` also a `job`
 * or an entry point `wandb scheduler <sweep>`; a local-process item with the placeholder uri and any
 * other entry point is an ordinary job (W&B's clients put that uri on ordinary runSpecs too).
 */
export function isSchedulerSpec(spec: {
  uri?: string | null;
  resource?: string | null;
  job?: string | null;
  overrides?: { entry_point?: string[] | null } | null;
}): boolean {
  if (spec.uri !== SCHEDULER_URI) return false;
  if (spec.resource !== 'local-process') return true;
  if (spec.job) return true;
  const cmd = spec.overrides?.entry_point ?? [];
  return cmd.length >= 3 && cmd[0] === 'wandb' && cmd[1] === 'scheduler';
}

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
/** W&B's numeric priorities: critical 0 … low 3. */
export const PRIORITY_VALUE: Record<Priority, number> = { critical: 0, high: 1, medium: 2, low: 3 };
