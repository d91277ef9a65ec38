import { z } from 'zod';
import { BUILD_CONTEXT_STORE_PATTERN, checkImageRepository } from './image-repository.js';

/**
 * The agent config (`launch-config.yaml`): W&B's keys, spelled as W&B spells them (kebab-case in
 * `builder`, snake_case elsewhere), plus our documented extensions. Every object is strict, so a
 * misspelt key fails at start-up instead of being silently ignored.
 *
 * Every `error` text below is a noun phrase that reads after "expected …": the issue formatter
 * (`issues.ts`) builds "expected <text>, found <value>" from it.
 */

const text = (what = 'a non-empty string') => z.string({ error: what }).min(1, { error: what });
const integer = (what: string) => z.number({ error: what }).int({ error: what });
/** W&B's `max_jobs` rule: -1 means no limit, any other negative is refused. */
const limit = () => integer('-1 (no limit) or an integer >= 0').min(-1, { error: '-1 (no limit) or an integer >= 0' });
const seconds = (what: string) => z.number({ error: what }).refine(Number.isFinite, { error: what });

/** Cross-field checks run even when a sibling field is bad, so one error lists every problem. */
const isObjectPayload = (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null;

const imageRepository = (description: string) =>
  z
    .string({ error: 'an image repository such as registry.example.com/team/image' })
    .superRefine((value, ctx) => {
      const checked = checkImageRepository(value);
      if (!checked.ok) ctx.addIssue({ code: 'custom', message: checked.expected });
    })
    // W&B strips the prefix too: docker and kaniko refuse a scheme in a destination.
    .transform((value) => (value.startsWith('https://') ? value.slice('https://'.length) : value).replace(/\/+$/, ''))
    .describe(description);

export const BUILDER_TYPES = ['docker', 'kaniko', 'noop'] as const;
export const REGISTRY_TYPES = ['ecr', 'acr', 'gcr', 'local', 'oci'] as const;
export const ENVIRONMENT_TYPES = ['aws', 'gcp', 'azure', 'local'] as const;
export const PLATFORMS = ['linux/amd64', 'linux/arm64'] as const;
export const SOURCES = ['wandb', 'embedded'] as const;

export const DEFAULT_BUILD_JOB_NAME = 'wandb-launch-container-build';
/** W&B's effective default (`kaniko_builder.py`), not the `:latest` its discarded pydantic model names. */
export const DEFAULT_KANIKO_IMAGE = 'gcr.io/kaniko-project/executor:v1.11.0';

export const builderConfigSchema = z
  .strictObject(
    {
      type: z.enum(BUILDER_TYPES).optional().describe('How images are built. Without a builder block: docker when `docker` works, noop otherwise.'),
      destination: imageRepository(
        'Image repository built images are pushed to, without a tag (the agent tags each image with a hash of its source). An https:// prefix is removed.',
      ).optional(),
      platform: z.enum(PLATFORMS).optional().describe('Target platform passed to `docker build --platform`.'),
      'build-context-store': z
        .string({ error: 'a string' })
        .regex(BUILD_CONTEXT_STORE_PATTERN, {
          error: 's3://<bucket>/<prefix>, gs://<bucket>/<prefix> or https://<account>.blob.core.windows.net/<container>/<prefix>',
        })
        .optional()
        .describe('Where kaniko build contexts are uploaded: an S3 or GCS bucket or an Azure blob container.'),
      'build-job-name': text().default(DEFAULT_BUILD_JOB_NAME).describe('Name prefix of kaniko build Jobs.'),
      'secret-name': text().optional().describe('Kubernetes secret holding registry credentials for kaniko; set together with secret-key.'),
      'secret-key': text().optional().describe('Key inside secret-name; set together with secret-name.'),
      'kaniko-image': text().default(DEFAULT_KANIKO_IMAGE).describe('Kaniko executor image.'),
      'kaniko-config': z
        .record(z.string(), z.unknown(), { error: 'a mapping (a partial batch/v1 Job)' })
        .refine(hasAtMostOneContainer, { error: 'a partial batch/v1 Job with at most one container in spec.template.spec.containers' })
        .optional()
        .describe('A partial batch/v1 Job merged into each kaniko build Job (at most one container).'),
    },
    { error: 'a mapping of builder keys' },
  )
  .refine((b) => b.type !== undefined || Object.keys(b).every((k) => k === 'build-job-name' || k === 'kaniko-image'), {
    path: ['type'],
    // W&B's loader refuses a builder block without a type ("Builder type not specified").
    error: 'one of "docker", "kaniko", "noop" (a builder block with other keys needs a type, as W&B requires)',
    when: isObjectPayload,
  })
  .refine((b) => (b['secret-name'] === undefined) === (b['secret-key'] === undefined), {
    path: ['secret-key'],
    error: (issue) =>
      (issue.input as Record<string, unknown>)['secret-name'] === undefined
        ? 'no secret-key without a secret-name (set both or neither)'
        : 'a secret-key alongside secret-name (set both or neither)',
    when: isObjectPayload,
  });

function hasAtMostOneContainer(job: Record<string, unknown>): boolean {
  const containers = (
    ((job['spec'] as Record<string, unknown> | undefined)?.['template'] as Record<string, unknown> | undefined)?.['spec'] as Record<string, unknown> | undefined
  )?.['containers'];
  return containers === undefined || (Array.isArray(containers) && containers.length <= 1);
}

/** Registry keys and the registry types they apply to (W&B: ECR's account_id/region/repo_name, GAR's repository/image-name/region/project). */
export const REGISTRY_KEY_TYPES: Record<string, readonly (typeof REGISTRY_TYPES)[number][]> = {
  uri: ['ecr', 'acr', 'gcr', 'oci'],
  account_id: ['ecr'],
  repo_name: ['ecr'],
  repository: ['ecr', 'gcr'],
  'image-name': ['gcr'],
  region: ['ecr', 'gcr'],
  project: ['gcr'],
  insecure: ['oci'],
};

export const registryConfigSchema = z
  .strictObject(
    {
      type: z.enum(REGISTRY_TYPES).optional().describe('Registry kind. `local` (the docker daemon) and `oci` (any OCI registry) are our additions.'),
      uri: imageRepository('Repository URI (W&B deprecates the registry block in favour of builder.destination).').optional(),
      account_id: text().optional().describe('ECR: AWS account id (with region and repo_name, instead of uri).'),
      repo_name: text().optional().describe('ECR: repository name.'),
      repository: text().optional().describe('GAR: repository name. ECR: accepted as repo_name (W&B reads it but refuses it).'),
      'image-name': text().optional().describe('GAR: image name.'),
      region: text().optional().describe('ECR/GAR: region (GAR: required without uri).'),
      project: text().optional().describe("GAR: Google Cloud project (defaults to the credentials' project)."),
      insecure: z.boolean({ error: 'a boolean (true or false)' }).optional().describe('OCI: talk plain HTTP to the registry.'),
    },
    { error: 'a mapping of registry keys' },
  )
  .superRefine(
    (registry, ctx) => {
      const type = registry.type;
      if (type === undefined || !REGISTRY_TYPES.includes(type)) return;
      for (const [key, types] of Object.entries(REGISTRY_KEY_TYPES)) {
        if ((registry as Record<string, unknown>)[key] !== undefined && !types.includes(type)) {
          ctx.addIssue({ code: 'custom', path: [key], message: `no ${key} for a ${type} registry (it applies to ${types.join(', ')})` });
        }
      }
      const has = (key: string) => (registry as Record<string, unknown>)[key] !== undefined;
      // W&B's registries (registry/*.py): a uri of the type's own host, or the parts, never both.
      const parts =
        type === 'ecr' ? ['account_id', 'region', 'repo_name', 'repository'] : type === 'gcr' ? ['repository', 'image-name', 'region', 'project'] : [];
      const given = parts.filter(has);
      if (has('uri') && given.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: [given[0]!],
          message: `either uri or ${parts.filter((p) => p !== 'repository' || type === 'gcr').join(', ')} for ${type === 'gcr' ? 'a' : 'an'} ${type} registry, not both`,
        });
      }
      const uri = registry.uri;
      if (uri !== undefined && (type === 'ecr' || type === 'gcr' || type === 'acr')) {
        const checked = checkImageRepository(uri);
        if (checked.ok && checked.value.kind !== type) {
          const shape = {
            ecr: '<account-id>.dkr.ecr.<region>.amazonaws.com/<repository>',
            gcr: '<region>-docker.pkg.dev/<project>/<repository>/<image>',
            acr: '<registry>.azurecr.io/<repository>',
          }[type];
          ctx.addIssue({
            code: 'custom',
            path: ['uri'],
            message: `${type === 'gcr' ? 'a' : 'an'} ${type} repository URI (${shape}) for a registry of type ${type}; use type oci for another registry`,
          });
        }
      }
      if ((type === 'acr' || type === 'oci') && !has('uri')) {
        ctx.addIssue({ code: 'custom', path: ['uri'], message: `a uri for the ${type} registry` });
      }
      if (type === 'ecr' && !has('uri') && !(has('account_id') && has('region') && (has('repo_name') || has('repository')))) {
        ctx.addIssue({ code: 'custom', path: ['uri'], message: 'a uri, or account_id, region and repo_name, for an ecr registry' });
      }
      if (type === 'gcr' && !has('uri') && !(has('repository') && has('image-name') && has('region'))) {
        ctx.addIssue({
          code: 'custom',
          path: ['uri'],
          message: "a uri, or repository, image-name and region (project defaults to the credentials' project), for a gcr registry",
        });
      }
    },
    { when: isObjectPayload },
  );

/**
 * Not strict: W&B accepts other keys here with a warning (its GCP docs write `project`), and so do
 * we; the loader's warnings name each one.
 */
export const environmentConfigSchema = z
  .looseObject(
    {
      type: z.enum(ENVIRONMENT_TYPES, { error: `one of ${ENVIRONMENT_TYPES.map((t) => `"${t}"`).join(', ')}` }).describe('Cloud environment.'),
      region: text().optional().describe('Cloud region; required for aws and gcp.'),
    },
    { error: 'a mapping of environment keys' },
  )
  .refine((e) => !(e.type === 'aws' || e.type === 'gcp') || e.region !== undefined, {
    path: ['region'],
    error: (issue) => `a region for the ${String((issue.input as Record<string, unknown>)['type'])} environment`,
    when: isObjectPayload,
  });

export const agentConfigSchema = z.strictObject({
  // W&B keys.
  entity: text().optional().describe("W&B entity (team or user). Env: WANDB_ENTITY. Defaults to the API key's default entity."),
  queues: z.array(text(), { error: 'a list of queue names' }).default([]).describe('Queues served round robin. Flag -q/--queue replaces this list.'),
  queue: text().optional().describe('One more queue, appended to queues.'),
  project: z.string({ error: 'a string' }).optional().describe('Accepted for compatibility and ignored.'),
  max_jobs: limit().default(1).describe('Concurrent jobs; -1 means no limit. Env: WANDB_LAUNCH_MAX_JOBS.'),
  max_schedulers: limit().default(1).describe('Concurrent sweep schedulers; -1 means no limit.'),
  secure_mode: z.boolean({ error: 'a boolean (true or false)' }).default(false).describe('Refuse jobs that override the entrypoint or image.'),
  verbosity: integer('an integer from 0 to 2')
    .min(0, { error: 'an integer from 0 to 2' })
    .max(2, { error: 'an integer from 0 to 2' })
    .default(0)
    .describe('0: status every 300 s; 1: every 20 s; 2: also internal logs.'),
  stopped_run_timeout: seconds('a number of seconds >= 0')
    .min(0, { error: 'a number of seconds >= 0' })
    .default(60)
    .describe('Seconds after a stop request before the run is cancelled.'),
  builder: builderConfigSchema.optional().describe('How job images are built and where they are pushed.'),
  registry: registryConfigSchema.optional().describe('Registry the runners pull from (W&B deprecates it for building in favour of builder.destination).'),
  environment: environmentConfigSchema.optional().describe('Cloud environment for credentials and context uploads.'),
  // Our extensions.
  source: z
    .enum(SOURCES)
    .optional()
    .describe(
      'Where queues live: the W&B API or the embedded durable queue (state_dir). Unset: W&B when an entity and credentials are configured, the embedded queue otherwise (the CLI decides).',
    ),
  base_url: z
    .url({ protocol: /^https?$/, error: 'an http:// or https:// URL' })
    .optional()
    .describe('W&B server URL. Env: WANDB_BASE_URL.'),
  api_key: text().optional().describe('W&B API key (a secret: never printed). Env: WANDB_API_KEY.'),
  poll_interval: seconds('a number of seconds > 0')
    .positive({ error: 'a number of seconds > 0' })
    .optional()
    .describe('Seconds between queue polls; the source decides when unset.'),
  start_timeout: seconds('a number of seconds')
    .default(1800)
    .describe('Seconds a run may stay starting before it is cancelled; <= 0 disables. Env: WANDB_LAUNCH_START_TIMEOUT.'),
  state_dir: text().optional().describe('Directory of the embedded queue (source: embedded); ~ is expanded. Env: LAUNCH_STATE_DIR.'),
  log_file: text().optional().describe('File for internal logs, or - for stdout (flag -l/--log-file).'),
  max_resume_count: integer('an integer >= 0').min(0, { error: 'an integer >= 0' }).default(5).describe('Times a preempted run is requeued.'),
  kill_grace_period: seconds('a number of seconds >= 0')
    .min(0, { error: 'a number of seconds >= 0' })
    .default(10)
    .describe('Seconds local runs get between TERM and KILL.'),
});

/** The config as written (every key optional). */
export type AgentConfigInput = z.input<typeof agentConfigSchema>;
/** The parsed config with defaults applied; `queue` is folded into `queues` and the ignored `project` dropped. */
export type AgentConfig = Omit<z.output<typeof agentConfigSchema>, 'queue' | 'project'>;
export type BuilderConfig = z.output<typeof builderConfigSchema>;
export type RegistryConfig = z.output<typeof registryConfigSchema>;
export type EnvironmentConfig = z.output<typeof environmentConfigSchema>;
