import { LaunchError } from '@launch/core';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** W&B's defaults for the kaniko build Job. */
export const KANIKO_DEFAULTS = {
  /** `builder.build-job-name`: the Job is `<build-job-name>-<run id>`. */
  buildJobName: 'wandb-launch-container-build',
  image: 'gcr.io/kaniko-project/executor:v1.11.0',
  containerName: 'wandb-container-build',
  /** `activeDeadlineSeconds` of the build pod; the builder waits up to three times this. */
  buildTimeoutSeconds: 1800,
  serviceAccountName: 'default',
  namespace: 'wandb',
  /** Where a PVC holding contexts is mounted in the build pod (`tar:///context/<id>.tgz`). */
  pvcContextMount: '/context',
} as const;

/** What the builder mounts and sets for credentials, decided from the options and the registry. */
export interface KanikoCredentialMounts {
  env: Json[];
  volumes: Json[];
  volumeMounts: Json[];
  /** Extra pod labels (`azure.workload.identity/use` for ACR). */
  podLabels: Record<string, string>;
}

export interface KanikoJobInput {
  /** The Job's name (`<build-job-name>-<run id>`, already DNS-safe). */
  name: string;
  namespace: string;
  /** `builder.kaniko-config`: a partial Job; deep-copied, never changed. */
  kanikoConfig: Json;
  image: string;
  /** `--context`: `s3://…`, `gs://…`, `https://….blob.core.windows.net/…` or `tar://…`. */
  context: string;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  /** The image to push, `repository:tag` (no scheme). */
  destination: string;
  /** The repository, for `--cache-repo`. */
  repository: string;
  buildArgs: Record<string, string>;
  serviceAccountName: string;
  activeDeadlineSeconds: number;
  credentials: KanikoCredentialMounts;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function configError(path: string, expected: string, found: unknown): LaunchError {
  const shown = Array.isArray(found) ? 'a list' : found === null ? 'null' : typeof found === 'object' ? 'an object' : JSON.stringify(found);
  return new LaunchError({
    code: 'builder.invalid_kaniko_config',
    stage: 'build',
    category: 'BuildFailed',
    message: `builder.kaniko-config ${path} must be ${expected}, found ${shown}`,
    hint: 'kaniko-config is a partial Kubernetes Job (metadata, spec.template.metadata/spec, one container); fix the agent config',
  });
}

/** `obj[key]` as an object, created when missing; refuses a value of another kind. */
function objectAt(obj: Json, key: string, path: string): Json {
  const value = obj[key];
  if (value === undefined || value === null) return (obj[key] = {});
  if (!isObject(value)) throw configError(path, 'an object', value);
  return value;
}

function listAt(obj: Json, key: string, path: string): Json[] {
  const value = obj[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw configError(path, 'a list', value);
  return value;
}

/**
 * Splits kaniko arguments into ordered `flag → value` pairs. W&B's docs ask for `--key=value`; a bare
 * `--flag` (kaniko booleans such as `--no-push`) is kept as it is. Anything else is refused.
 */
export function parseKanikoArgs(args: unknown[], path: string): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  args.forEach((arg, i) => {
    if (typeof arg !== 'string' || !/^--?[A-Za-z0-9][A-Za-z0-9._-]*(=|$)/.test(arg)) {
      throw configError(`${path}[${i}]`, 'a kaniko flag "--key=value" (or a bare "--flag")', arg);
    }
    const eq = arg.indexOf('=');
    if (eq < 0) out.set(arg, undefined);
    else out.set(arg.slice(0, eq), arg.slice(eq + 1));
  });
  return out;
}

/**
 * The kaniko build Job, made as W&B's kaniko builder makes it: a deep copy of `kaniko-config` with
 * ours filled in where the user left a field unset.
 *
 * - Job: `apiVersion`/`kind` forced; `metadata.name` and `namespace` default to ours; label
 *   `wandb=launch` on the Job and the pod (plus ACR's workload-identity label).
 * - Pod: `restartPolicy=Never`, `activeDeadlineSeconds`, `serviceAccountName` unless given;
 *   `backoffLimit=0` unless given; our volumes appended to the user's.
 * - Container: exactly one (more is refused); `name` and `image` unless given; args are ours
 *   (`--context`, `--dockerfile`, `--destination`, `--cache=true`, `--cache-repo`,
 *   `--snapshot-mode=redo`, `--compressed-caching=false`, then `--build-arg`s) with the user's
 *   `--key=value` args overriding the same key and adding new ones; env and volume mounts appended
 *   to the user's.
 */
export function buildKanikoJob(input: KanikoJobInput): Json {
  if (input.kanikoConfig !== undefined && !isObject(input.kanikoConfig)) throw configError('', 'an object (a partial Job)', input.kanikoConfig);
  const job: Json = structuredClone(input.kanikoConfig ?? {});
  const metadata = objectAt(job, 'metadata', 'metadata');
  const jobLabels = objectAt(metadata, 'labels', 'metadata.labels');
  const spec = objectAt(job, 'spec', 'spec');
  const template = objectAt(spec, 'template', 'spec.template');
  const podMetadata = objectAt(template, 'metadata', 'spec.template.metadata');
  const podLabels = objectAt(podMetadata, 'labels', 'spec.template.metadata.labels');
  const podSpec = objectAt(template, 'spec', 'spec.template.spec');

  job.apiVersion = 'batch/v1';
  job.kind = 'Job';
  metadata.name ??= input.name;
  metadata.namespace ??= input.namespace;
  jobLabels.wandb = 'launch';
  podLabels.wandb = 'launch';
  Object.assign(podLabels, input.credentials.podLabels);
  podSpec.restartPolicy ??= 'Never';
  podSpec.activeDeadlineSeconds ??= input.activeDeadlineSeconds;
  podSpec.serviceAccountName ??= input.serviceAccountName;
  spec.backoffLimit ??= 0;

  const containers = listAt(podSpec, 'containers', 'spec.template.spec.containers');
  if (containers.length > 1) {
    throw new LaunchError({
      code: 'builder.invalid_kaniko_config',
      stage: 'build',
      category: 'BuildFailed',
      message: `builder.kaniko-config spec.template.spec.containers has ${containers.length} containers; the kaniko build Job takes one`,
      hint: 'give one container in kaniko-config (its args, env and resources apply to the kaniko executor)',
    });
  }
  const containerPath = 'spec.template.spec.containers[0]';
  const container: Json = containers[0] ?? {};
  if (!isObject(container)) throw configError(containerPath, 'an object', container);
  container.name ??= KANIKO_DEFAULTS.containerName;
  container.image ??= input.image;

  const args = new Map<string, string | undefined>([
    ['--context', input.context],
    ['--dockerfile', input.dockerfile],
    ['--destination', input.destination.replace(/^https?:\/\//, '')],
    ['--cache', 'true'],
    ['--cache-repo', input.repository.replace(/^https?:\/\//, '')],
    ['--snapshot-mode', 'redo'],
    ['--compressed-caching', 'false'],
  ]);
  const rendered: string[] = [];
  const userArgs = parseKanikoArgs(listAt(container, 'args', `${containerPath}.args`), `${containerPath}.args`);
  const userBuildArgs = userArgs.has('--build-arg');
  for (const [key, value] of userArgs) args.set(key, value);
  for (const [key, value] of args) rendered.push(value === undefined ? key : `${key}=${value}`);
  // Build args are a repeated flag: ours go after, unless the user set --build-arg themselves.
  if (!userBuildArgs) for (const [k, v] of Object.entries(input.buildArgs)) rendered.push(`--build-arg=${k}=${v}`);
  container.args = rendered;

  const env = [...listAt(container, 'env', `${containerPath}.env`), ...input.credentials.env];
  if (env.length) container.env = env;
  else delete container.env;
  const mounts = [...listAt(container, 'volumeMounts', `${containerPath}.volumeMounts`), ...input.credentials.volumeMounts];
  if (mounts.length) container.volumeMounts = mounts;
  const volumes = [...listAt(podSpec, 'volumes', 'spec.template.spec.volumes'), ...input.credentials.volumes];
  if (volumes.length) podSpec.volumes = volumes;
  podSpec.containers = [container];
  return job;
}

/** `<build-job-name>-<run id>` as a DNS-1123 name (lower case, `[a-z0-9-]`, at most 63 characters). */
export function kanikoJobName(buildJobName: string, runId: string): string {
  const raw = `${buildJobName}-${runId}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return raw.slice(0, 63).replace(/^-+|-+$/g, '') || 'launch-build';
}
