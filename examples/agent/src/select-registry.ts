import { LaunchError, type AgentConfig, type Registry } from '@launch/core';
import { registryTypeOf, selectRegistry as registryFor, type RegistryType } from '@launch/registries';
import { createEnvironmentLoader, type CloudType, type EnvironmentLoader } from './select-environment.js';

/** Which repository images go to, and the config key that said so. */
export interface RegistryPlan {
  uri: string;
  /** The config key(s) the uri came from, for messages. */
  from: string;
  type: RegistryType;
  /** GAR from `registry.*` parts without a project: the project comes from the Google credentials (as in W&B). */
  garParts?: { region: string; repository: string; imageName: string };
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
    // the placeholder then stands in the uri (and its message) until the credentials are asked.
    uri = `${registry.region}-docker.pkg.dev/${registry.project ?? '<project>'}/${registry.repository}/${registry['image-name']}`;
    from = 'registry.region, registry.project, registry.repository and registry.image-name';
    if (!registry.project) {
      from = 'registry.region, registry.repository and registry.image-name (the project from the Google credentials)';
      return { uri, from, type: 'gar', garParts: { region: registry.region!, repository: registry.repository!, imageName: registry['image-name']! } };
    }
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
  /** Cloud environments shared with the context store; default a loader of its own. */
  environments?: EnvironmentLoader;
}

export interface SelectedRegistry {
  registry?: Registry;
  plan?: RegistryPlan;
  /** What start-up and `config check` say about it. */
  lines: string[];
}

/** The cloud whose package brings each cloud registry type. */
const REGISTRY_CLOUD: Record<Exclude<RegistryType, 'oci'>, CloudType> = { ecr: 'aws', gar: 'gcp', acr: 'azure' };

/** The cloud a registry plan needs, if any. */
export function registryCloud(plan: RegistryPlan | undefined): CloudType | undefined {
  return plan && plan.type !== 'oci' ? REGISTRY_CLOUD[plan.type] : undefined;
}

/**
 * The `Registry` builds check and push to: a generic OCI Distribution registry with credentials
 * from the Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: `credHelpers`,
 * `credsStore`, `auths`); Amazon ECR through `@launch/cloud-aws`, Artifact Registry through
 * `@launch/cloud-gcp`, ACR through `@launch/cloud-azure`, each package loaded only when the host is
 * its cloud's. The cloud environment is `environment.*` when it names that cloud, else the cloud's
 * defaults with the region in the host (ECR, GAR).
 */
export async function selectRegistry(s: RegistrySelection): Promise<SelectedRegistry> {
  const plan = registryPlan(s.config);
  if (!plan) return { lines: [] };
  const environments = s.environments ?? createEnvironmentLoader(s.config, s.env);
  let registry: Registry;
  try {
    if (plan.type === 'ecr') {
      // Loaded only here: the AWS SDK is large, and only an ECR destination needs it.
      const { ecrRegistryFactory } = await import('@launch/cloud-aws');
      // The repository's own region when the config names none: ECR calls go there anyway.
      const environment = await environments.get('aws', { region: regionOfHost(plan) });
      registry = registryFor(plan.uri, { cloud: { ecr: ecrRegistryFactory(environment) } });
    } else if (plan.type === 'gar') {
      const { createGarRegistry, garRegistryFactory } = await import('@launch/cloud-gcp');
      const environment = await environments.get('gcp', { region: plan.garParts?.region ?? regionOfHost(plan) });
      registry = plan.garParts
        ? createGarRegistry({ ...plan.garParts, environment })
        : registryFor(plan.uri, { cloud: { gar: garRegistryFactory(environment) } });
    } else if (plan.type === 'acr') {
      const { acrRegistryFactory } = await import('@launch/cloud-azure');
      const environment = await environments.get('azure');
      registry = registryFor(plan.uri, { cloud: { acr: acrRegistryFactory(environment) } });
    } else {
      registry = registryFor(plan.uri, registryOptions(s.config, s.env));
    }
  } catch (error) {
    throw configError(`${plan.from} ${JSON.stringify(plan.uri)} cannot be used`, error);
  }
  return { registry, plan, lines: describeRegistry(plan, registry) };
}

/** The region named in an ECR (`<account>.dkr.ecr.<region>.amazonaws.com`) or GAR (`<region>-docker.pkg.dev`, not a multi-region) host. */
export function regionOfHost(plan: RegistryPlan): string | undefined {
  const host = plan.uri.replace(/^https?:\/\//, '').split('/')[0] ?? '';
  if (plan.type === 'ecr') return /\.dkr\.ecr\.([^.]+)\./.exec(host)?.[1];
  // A multi-region (us, europe, asia) is no region for the Google environment: it then needs environment.region.
  if (plan.type === 'gar') return /^([a-z]+-[a-z]+\d{1,2})-docker\.pkg\.dev$/.exec(host)?.[1];
  return undefined;
}

/** The lines `config check` prints for the registry, without constructing cloud clients. */
export function describeRegistryPlan(config: AgentConfig, env: Record<string, string | undefined>): string[] {
  const plan = registryPlan(config);
  if (!plan) return ['registry: none: built images stay in the Docker engine (no builder.destination or registry.uri)'];
  if (plan.type !== 'oci') return describeRegistry(plan);
  try {
    return describeRegistry(plan, registryFor(plan.uri, registryOptions(config, env)));
  } catch (error) {
    throw configError(`${plan.from} ${JSON.stringify(plan.uri)} cannot be used`, error);
  }
}

const CLOUD_CREDENTIALS: Record<Exclude<RegistryType, 'oci'>, string> = {
  ecr: 'the AWS default credential chain (ECR GetAuthorizationToken)',
  gar: 'Application Default Credentials (an access token as oauth2accesstoken)',
  acr: 'DefaultAzureCredential (an AAD token exchanged for an ACR refresh token)',
};

function describeRegistry(plan: RegistryPlan, registry?: Registry): string[] {
  if (plan.type !== 'oci') {
    return [`registry: ${plan.uri} (${TYPE_NAMES[plan.type]}, from ${plan.from}); credentials from ${CLOUD_CREDENTIALS[plan.type]}`];
  }
  const credentials = registry?.needsPullSecret
    ? 'credentials from the Docker config (DOCKER_CONFIG or ~/.docker/config.json)'
    : 'no credentials for this host in the Docker config: anonymous';
  return [`registry: ${plan.uri} (${TYPE_NAMES.oci}, from ${plan.from}); ${credentials}`];
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

function configError(what: string, error: unknown): LaunchError {
  const cause = LaunchError.isInstance(error) ? error : undefined;
  return new LaunchError({
    code: 'config.registry',
    message: `${what}: ${error instanceof Error ? error.message : String(error)}`,
    hint: cause?.hint ?? 'fix builder.destination or the registry block in launch-config.yaml',
    cause: error,
  });
}
