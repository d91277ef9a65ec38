import { LaunchError, type AgentConfig, type Registry } from '@launch/core';
import { registryTypeOf, selectRegistry as registryFor, type RegistryType } from '@launch/registries';

/** Which repository images go to, and the config key that said so. */
export interface RegistryPlan {
  uri: string;
  /** The config key(s) the uri came from, for messages. */
  from: string;
  type: RegistryType;
}

const TYPE_NAMES: Record<RegistryType, string> = {
  acr: 'Azure Container Registry (acr)',
  gar: 'Google Artifact Registry (gar)',
  ecr: 'Amazon ECR (ecr)',
  oci: 'OCI registry',
};

/**
 * The repository built images are pushed to, as W&B decides it: `builder.destination` replaces the
 * `registry` block inside the builder; else `registry.uri`, or for ECR `account_id`, `region` and
 * `repo_name`. `registry.type: local` (and no registry at all) means images stay in the engine.
 * Throws a config error (exit 2) for a uri no registry can take, naming the key.
 */
export function registryPlan(config: AgentConfig): RegistryPlan | undefined {
  const registry = config.registry;
  let uri: string | undefined;
  let from: string;
  if (config.builder?.destination) {
    uri = config.builder.destination;
    from = 'builder.destination';
  } else if (!registry || registry.type === 'local') {
    return undefined;
  } else if (registry.uri) {
    uri = registry.uri;
    from = 'registry.uri';
  } else if (registry.type === 'ecr') {
    uri = `${registry.account_id}.dkr.ecr.${registry.region}.amazonaws.com/${registry.repo_name ?? registry.repository}`;
    from = 'registry.account_id, registry.region and registry.repo_name';
  } else if (registry.type === 'gcr') {
    // W&B's GAR registry takes the project from the Google credentials when the config has none;
    // GAR is refused below either way, so the placeholder only shapes the message.
    uri = `${registry.region}-docker.pkg.dev/${registry.project ?? '<project>'}/${registry.repository}/${registry['image-name']}`;
    from = 'registry.region, registry.project, registry.repository and registry.image-name';
  } else {
    return undefined;
  }
  try {
    return { uri, from, type: registryTypeOf(uri) };
  } catch (error) {
    throw configError(`${from} ${JSON.stringify(uri)} cannot be used`, error);
  }
}

export interface RegistrySelection {
  config: AgentConfig;
  env: Record<string, string | undefined>;
}

export interface SelectedRegistry {
  registry?: Registry;
  plan?: RegistryPlan;
  /** What start-up and `config check` say about it. */
  lines: string[];
}

/**
 * The `Registry` the docker builder checks and pushes to: a generic OCI Distribution registry with
 * credentials from the Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`:
 * `credHelpers`, `credsStore`, `auths`), or Amazon ECR through `@launch/cloud-aws`, loaded only when
 * the host is ECR. ACR and GAR are refused at start-up (exit 2): they are not available yet.
 */
export async function selectRegistry(s: RegistrySelection): Promise<SelectedRegistry> {
  const plan = registryPlan(s.config);
  if (!plan) return { lines: [] };
  refuseUnavailable(plan);
  const options = registryOptions(s.config, s.env);
  let registry: Registry;
  try {
    if (plan.type === 'ecr') {
      // Loaded only here: the AWS SDK is large, and only an ECR destination needs it.
      const { createAwsEnvironment, ecrRegistryFactory } = await import('@launch/cloud-aws');
      // The repository's own region when the config names none: ECR calls go there anyway.
      const region = awsRegion(s.config) ?? /\.dkr\.ecr\.([^.]+)\./.exec(plan.uri)?.[1];
      const environment = createAwsEnvironment({ ...(region ? { region } : {}), env: plainEnv(s.env) });
      registry = registryFor(plan.uri, { cloud: { ecr: ecrRegistryFactory(environment) } });
    } else {
      registry = registryFor(plan.uri, options);
    }
  } catch (error) {
    throw configError(`${plan.from} ${JSON.stringify(plan.uri)} cannot be used`, error);
  }
  return { registry, plan, lines: describeRegistry(plan, registry) };
}

/** The lines `config check` prints for the registry, without constructing cloud clients. */
export function describeRegistryPlan(config: AgentConfig, env: Record<string, string | undefined>): string[] {
  const plan = registryPlan(config);
  if (!plan) return ['registry: none: built images stay in the Docker engine (no builder.destination or registry.uri)'];
  refuseUnavailable(plan);
  if (plan.type === 'ecr') return describeRegistry(plan);
  try {
    return describeRegistry(plan, registryFor(plan.uri, registryOptions(config, env)));
  } catch (error) {
    throw configError(`${plan.from} ${JSON.stringify(plan.uri)} cannot be used`, error);
  }
}

function describeRegistry(plan: RegistryPlan, registry?: Registry): string[] {
  if (plan.type === 'ecr') {
    return [`registry: ${plan.uri} (${TYPE_NAMES.ecr}, from ${plan.from}); credentials from the AWS default credential chain`];
  }
  const credentials = registry?.needsPullSecret
    ? 'credentials from the Docker config (DOCKER_CONFIG or ~/.docker/config.json)'
    : 'no credentials for this host in the Docker config: anonymous';
  return [`registry: ${plan.uri} (${TYPE_NAMES.oci}, from ${plan.from}); ${credentials}`];
}

function refuseUnavailable(plan: RegistryPlan): void {
  if (plan.type !== 'acr' && plan.type !== 'gar') return;
  const host = plan.uri.split('/')[0];
  throw new LaunchError({
    code: 'config.registry_unavailable',
    message: `${plan.from} names ${host}, ${TYPE_NAMES[plan.type]}: that registry is not available yet in this agent`,
    hint: 'push to Amazon ECR or to an OCI registry (Harbor, GHCR, Distribution, …) with builder.destination, or use W&B\'s agent for this registry',
  });
}

/** A plain copy: `process.env` is an exotic object that the registries' option schemas refuse as a record. */
function plainEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

function registryOptions(config: AgentConfig, env: Record<string, string | undefined>) {
  return { env: plainEnv(env), ...(config.registry?.type === 'oci' && config.registry.insecure !== undefined ? { insecure: config.registry.insecure } : {}) };
}

function awsRegion(config: AgentConfig): string | undefined {
  return config.environment?.type === 'aws' ? config.environment.region : undefined;
}

function configError(what: string, error: unknown): LaunchError {
  const cause = LaunchError.isInstance(error) ? error : undefined;
  return new LaunchError({
    code: 'config.registry',
    message: `${what}: ${error instanceof Error ? error.message : String(error)}`,
    hint: cause?.hint ?? 'fix builder.destination or the registry block in launch-config.yaml',
    cause: error,
  });
}
