import { z } from 'zod';
import { configIssues } from './config/issues.js';
import { LaunchValidationError, type ValidationIssue } from './errors.js';
import { closest, describeValue } from './validation.js';
import { convertLegacyResourceArgs, legacyResourceArgIssues } from './spec-legacy.js';
import { recognizeForeignSpec } from './spec-foreign.js';

/**
 * The launch spec (W&B's `runSpec`): the keys W&B's clients and server put on a run queue item,
 * plus the keys our agent and W&B client add. Every object W&B gives a shape to is strict, so a
 * misspelt or invented key is refused with a "did you mean" instead of being carried to a runner
 * that ignores it. docs/launch-spec.md lists every key.
 */

/** The resources W&B's agent knows (`loader.runner_from_config`). */
export const WANDB_RESOURCES = ['local-container', 'local', 'local-process', 'kubernetes', 'sagemaker', 'vertex', 'gcp-vertex'] as const;

const RESOURCE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const text = (what = 'a string') => z.string({ error: what }).max(1_000_000, { error: `${what} of at most 1,000,000 characters` });
const nullableText = (what?: string) => text(what).nullish();
const mapping = (what = 'a mapping') => z.record(z.string(), z.unknown(), { error: what });
const stringList = (what: string) => z.array(text('a string'), { error: what });

/**
 * Checks a resource name: W&B's, or another lower-case name a custom runner may declare. A near miss
 * of one of W&B's names (`kubernets`) is refused: it is a typo, not a new backend.
 */
function resourceNameIssue(path: string, value: string): ValidationIssue | undefined {
  if ((WANDB_RESOURCES as readonly string[]).includes(value)) return undefined;
  const expected = `a resource name (${WANDB_RESOURCES.join(', ')}, or a lower-case name a custom runner declares)`;
  const guess = closest(value, WANDB_RESOURCES);
  if (RESOURCE_NAME.test(value) && !guess) return undefined;
  const found = describeValue(value);
  return { path, expected, found, message: `expected ${expected}, found ${found}${guess ? ` (did you mean "${guess}"?)` : ''}` };
}

/** Keys of a Kubernetes manifest: seen directly under resource_args, they lack the resource level. */
const MANIFEST_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'namespace', 'tolerations', 'containers', 'template']);

function resourceIssues(raw: Record<string, unknown>): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (typeof raw['resource'] === 'string') {
    const issue = resourceNameIssue('resource', raw['resource']);
    if (issue) out.push(issue);
  }
  const args = raw['resource_args'];
  if (isPlainObject(args)) {
    const manifestKeys = Object.keys(args).filter((k) => MANIFEST_KEYS.has(k));
    if (manifestKeys.length > 0) {
      const resource = typeof raw['resource'] === 'string' ? raw['resource'] : 'kubernetes';
      out.push({
        path: 'resource_args',
        expected: 'a mapping of resource names to their arguments',
        found: `the keys ${manifestKeys.map((k) => `"${k}"`).join(', ')} directly under resource_args`,
        message: `expected a mapping of resource names to their arguments, found ${manifestKeys.map((k) => `"${k}"`).join(', ')} directly under resource_args: W&B keys resource_args by resource, so move them under resource_args.${resource}`,
      });
      return out;
    }
    for (const key of Object.keys(args)) {
      const issue = resourceNameIssue(`resource_args.${key}`, key);
      if (issue) out.push({ ...issue, found: `the key "${key}"`, message: issue.message.replace(/, found "[^"]*"/, `, found the key "${key}"`) });
    }
  }
  return out;
}

/** `resource_args.<resource>.builder`: W&B pops it before the runner sees the args. */
const baseImage = z.strictObject({ base_image: nullableText('an image reference') }, { error: 'a mapping with base_image' });
const resourceBuilderSchema = z.strictObject(
  { accelerator: baseImage.nullish(), cuda: baseImage.nullish(), base_image: nullableText('an image reference') },
  { error: 'a mapping of accelerator, cuda or base_image' },
);
/** The runner checks its own arguments; only the `builder` sub-key has a shape W&B defines. */
const resourceArgsEntry = z.looseObject({ builder: resourceBuilderSchema.nullish() }, { error: "a mapping of the resource's arguments" });

export const overridesSchema = z.strictObject(
  {
    args: stringList('a list of strings (arguments appended to the entry point)').nullish(),
    run_config: mapping('a mapping (the run config, WANDB_CONFIG)').nullish(),
    artifacts: mapping('a mapping of artifact names to versions').nullish(),
    files: mapping('a mapping of file paths to contents').nullish(),
    entry_point: stringList('a list of strings (the command and its arguments)').nullish(),
    dockerfile: nullableText('a path to a Dockerfile'),
    working_dir: nullableText('a directory'),
  },
  { error: 'a mapping of overrides (args, run_config, artifacts, files, entry_point, dockerfile, working_dir)' },
);

export const launchSpecSchema = z.strictObject(
  {
    // W&B's run spec (`utils.construct_launch_spec`, `LaunchProject.from_spec`).
    uri: nullableText(),
    job: nullableText('a job name such as entity/project/job:alias'),
    entity: nullableText(),
    project: nullableText(),
    name: nullableText(),
    author: nullableText(),
    run_id: z
      .string({ error: 'a run id' })
      .regex(/^[A-Za-z0-9._-]{1,128}$/, { error: 'a run id of letters, digits, ".", "_" or "-" (at most 128)' })
      .nullish(),
    sweep_id: nullableText(),
    _resume_count: z.number({ error: 'an integer >= 0' }).int({ error: 'an integer >= 0' }).min(0, { error: 'an integer >= 0' }).nullish(),
    _wandb_api_key: nullableText(),
    python_version: nullableText('a Python version such as "3.11"'),
    image_uri: nullableText('an image reference'),
    docker: z
      .strictObject(
        {
          docker_image: nullableText('an image reference'),
          user_id: z
            .union(
              [
                z.number().int({ error: 'a user id (an integer >= 0)' }).min(0, { error: 'a user id (an integer >= 0)' }),
                z.string().regex(/^\d+$/, { error: 'a user id (an integer >= 0)' }),
              ],
              { error: 'a user id (an integer >= 0)' },
            )
            .nullish(),
        },
        { error: 'a mapping with docker_image and user_id' },
      )
      .nullish(),
    git: z.strictObject({ version: nullableText(), repo: nullableText() }, { error: 'a mapping with version and repo' }).nullish(),
    overrides: overridesSchema.nullish(),
    resource: z.string({ error: 'a resource name such as "kubernetes" or "local-process"' }).nullish(),
    resource_args: z.record(z.string(), resourceArgsEntry, { error: 'a mapping of resource names to their arguments' }).nullish(),
    additional_services: z
      .array(z.strictObject({ config: mapping('a Kubernetes manifest (a mapping)') }, { error: 'a mapping with config' }), {
        error: 'a list of {config: <manifest>}',
      })
      .nullish(),
    builder: mapping().nullish(),
    template_variables: z
      .record(z.string(), z.union([z.string(), z.number()], { error: 'a string or a number' }), { error: 'a mapping of variable names to strings or numbers' })
      .nullish(),
    queue_entity: nullableText(),
    // Added by our W&B client so a push can be retried without enqueuing twice.
    _launch_push_id: nullableText(),
    // Ours: extra environment for the run.
    // Names are checked in envNameIssues, so the issue shows the bad name rather than its value.
    env: z.record(z.string(), text(), { error: 'a mapping of environment variable names to strings' }).nullish(),
  },
  { error: 'a mapping (a launch spec)' },
);

export type LaunchSpec = z.infer<typeof launchSpecSchema>;

/** A change `normalizeLaunchSpec` made, or a key the agent accepts but will not use. */
export interface SpecWarning {
  /** Dotted path of the key, as in validation issues. */
  path: string;
  message: string;
}

/** Keys users put at the top level that live elsewhere in a spec, with where they go. */
const MOVED_TOP_LEVEL: Record<string, string> = {
  image: 'a launch spec names its image in docker.docker_image (or image_uri)',
  docker_image: 'write it as docker.docker_image',
  command: 'the command goes in overrides.entry_point (a list of strings)',
  entry_point: 'write it as overrides.entry_point (a list of strings)',
  entrypoint: 'write it as overrides.entry_point (a list of strings)',
  args: 'write it as overrides.args',
  run_config: 'write it as overrides.run_config',
  config: 'the run config goes in overrides.run_config',
  artifacts: 'write it as overrides.artifacts',
  files: 'write it as overrides.files',
  dockerfile: 'write it as overrides.dockerfile',
  working_dir: 'write it as overrides.working_dir',
  cwd: 'the working directory goes in overrides.working_dir',
  version: 'the git version goes in git.version',
  repo: 'write it as git.repo',
  docker_user_id: 'write it as docker.user_id',
  queue: 'the queue is chosen when the item is enqueued, not in the spec',
  priority: 'the priority is given when the item is enqueued, not in the spec',
  registry: "the registry comes from the agent config (builder.destination), not from the spec (W&B's old `registry` spec key)",
  build: "the build is configured by the agent config's builder block (W&B's old `build` spec key)",
  namespace: 'the Kubernetes namespace goes in resource_args.kubernetes.metadata.namespace',
  job_type: 'job_type is a wandb.init setting, not a launch spec key; the job to run goes in job',
  environment: 'environment variables go in env (a mapping of names to strings)',
  synchronous: "synchronous is a setting of Dagster's launch op, not a launch spec key",
  cuda: 'a CUDA base image goes in resource_args.<resource>.builder.cuda.base_image',
};

const MOVED_IN_OVERRIDES: Record<string, string> = {
  config: 'write it as overrides.run_config',
  command: 'write it as overrides.entry_point (a list of strings)',
  env: "environment variables go in the spec's top-level env",
  image: 'the image goes in docker.docker_image',
};

const MOVED_IN_DOCKER: Record<string, string> = {
  image: 'write it as docker.docker_image',
  user: 'write it as docker.user_id (a numeric user id)',
};

function unknownKeyMessage(key: string, at: ReadonlyArray<PropertyKey>): string | undefined {
  const where = at.join('.');
  const table = where === '' ? MOVED_TOP_LEVEL : where === 'overrides' ? MOVED_IN_OVERRIDES : where === 'docker' ? MOVED_IN_DOCKER : {};
  const moved = Object.hasOwn(table, key) ? table[key] : undefined;
  return moved === undefined ? undefined : `unknown key "${key}": ${moved}`;
}

const SECRET_PATHS: ReadonlySet<string> = new Set(['_wandb_api_key']);

function invalid(issues: ValidationIssue[], hint?: string): LaunchValidationError {
  return new LaunchValidationError({ code: 'spec.invalid', stage: 'agent', subject: 'launch spec', issues, ...(hint ? { hint } : {}) });
}

const SPEC_HINT = 'fix the listed fields; docs/launch-spec.md lists every launch spec key';

function notAnObject(raw: unknown): LaunchValidationError {
  const found = raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw;
  return invalid(
    [{ path: '', expected: 'an object', found, message: `expected an object, found ${found}` }],
    'a queue item must carry a JSON object as its run spec',
  );
}

/** Issues of a spec already known to be a plain object, without converting anything. */
function specIssues(raw: Record<string, unknown>): ValidationIssue[] {
  const foreign = recognizeForeignSpec(raw);
  if (foreign) return [foreign];
  const issues: ValidationIssue[] = [];
  const resources = resourceIssues(raw);
  // resource_args that hold a manifest directly get one issue saying so, not one per manifest key.
  const flat = resources.some((i) => i.path === 'resource_args');
  const result = launchSpecSchema.safeParse(raw);
  if (!result.success) {
    const zodOnes = configIssues(result.error, raw, launchSpecSchema, { secretPaths: SECRET_PATHS, unknownKey: unknownKeyMessage });
    issues.push(...(flat ? zodOnes.filter((i) => !i.path.startsWith('resource_args.')) : zodOnes));
  }
  issues.push(...resources);
  const env = raw['env'];
  if (isPlainObject(env)) {
    for (const name of Object.keys(env)) {
      if (!ENV_NAME.test(name)) {
        const expected = 'an environment variable name (letters, digits and _, not starting with a digit)';
        issues.push({
          path: `env.${name}`,
          expected,
          found: `the name ${JSON.stringify(name)}`,
          message: `expected ${expected}, found the name ${JSON.stringify(name)}`,
        });
      }
    }
  }
  issues.push(...legacyResourceArgIssues(raw));
  return issues;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a raw spec from a queue and returns it typed. Throws a LaunchValidationError (code
 * `spec.invalid`, stage `agent`) naming every bad field by its path, what was expected and what was
 * found. W&B's legacy flat `resource_args` forms are refused here with the modern form shown; use
 * `normalizeLaunchSpec` to convert them instead (with warnings).
 */
export function parseLaunchSpec(raw: unknown): LaunchSpec {
  if (!isPlainObject(raw)) throw notAnObject(raw);
  const issues = specIssues(raw);
  if (issues.length > 0) throw invalid(issues, SPEC_HINT);
  return launchSpecSchema.parse(raw);
}

/**
 * Like `parseLaunchSpec`, but converts what can be converted without guessing, and says so:
 * W&B's legacy flat Kubernetes `resource_args` keys (`tolerations`, `resource_limits`, `env`, …)
 * are moved to where a Job manifest keeps them. Also warns about keys that are accepted but not
 * used (a spec-level `builder`, `resource_args` for a resource the job does not run on). The input
 * is never modified. Throws like `parseLaunchSpec` when something cannot be converted.
 */
export function normalizeLaunchSpec(raw: unknown): { spec: LaunchSpec; warnings: SpecWarning[] } {
  if (!isPlainObject(raw)) throw notAnObject(raw);
  const warnings: SpecWarning[] = [];
  const converted = convertLegacyResourceArgs(raw, warnings);
  const spec = parseLaunchSpec(converted);
  if (isPlainObject(spec.builder) && Object.keys(spec.builder).length > 0) {
    warnings.push({ path: 'builder', message: "ignored: images are built as the agent config's builder block says (W&B ignores a spec-level builder too)" });
  }
  if (spec.resource && spec.resource_args) {
    for (const key of Object.keys(spec.resource_args)) {
      if (key !== spec.resource && !(key === 'local' && spec.resource === 'local-container') && !(key === 'local-container' && spec.resource === 'local')) {
        warnings.push({ path: `resource_args.${key}`, message: `ignored: the job runs on resource "${spec.resource}"` });
      }
    }
  }
  return { spec, warnings };
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
