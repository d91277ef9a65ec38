import type { AgentConfig } from '@launch/core';
import type { AwsEnvironment, AwsService } from '@launch/cloud-aws';
import type { GcpEnvironment } from '@launch/cloud-gcp';
import type { AzureEnvironment } from '@launch/cloud-azure';

/** The clouds the agent has a package for. */
export type CloudType = 'aws' | 'gcp' | 'azure';

/** A cloud environment, by its type. */
export interface CloudEnvironments {
  aws: AwsEnvironment;
  gcp: GcpEnvironment;
  azure: AzureEnvironment;
}

/** The package that brings each cloud; loaded with `await import()` only when that cloud is used. */
export const CLOUD_PACKAGES: Record<CloudType, string> = { aws: '@launch/cloud-aws', gcp: '@launch/cloud-gcp', azure: '@launch/cloud-azure' };

const CLOUD_NAMES: Record<CloudType, string> = { aws: 'AWS', gcp: 'Google Cloud', azure: 'Azure' };

/**
 * AWS endpoint variables the agent passes to the AWS environment (the AWS SDKs' and CLI's own names):
 * a service-specific one wins over `AWS_ENDPOINT_URL`. For VPC endpoints, FIPS, and emulators.
 */
const AWS_ENDPOINT_VARS: Record<AwsService, string> = { s3: 'AWS_ENDPOINT_URL_S3', ecr: 'AWS_ENDPOINT_URL_ECR', sts: 'AWS_ENDPOINT_URL_STS' };

/** `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, for each service that has one set. */
export function awsEndpoints(env: Record<string, string | undefined>): Partial<Record<AwsService, string>> {
  const out: Partial<Record<AwsService, string>> = {};
  for (const [service, name] of Object.entries(AWS_ENDPOINT_VARS) as [AwsService, string][]) {
    const value = env[name] || env.AWS_ENDPOINT_URL;
    if (value) out[service] = value;
  }
  return out;
}

/** The cloud named by `environment.type`, or undefined for `local` and no environment block. */
export function configuredCloud(config: AgentConfig): CloudType | undefined {
  const type = config.environment?.type;
  return type === 'aws' || type === 'gcp' || type === 'azure' ? type : undefined;
}

/** What `config check` says about the environment block (no SDK is loaded). */
export function describeEnvironment(config: AgentConfig): string {
  const cloud = configuredCloud(config);
  if (!cloud) return `environment: none${config.environment?.type === 'local' ? ' (environment.type: local)' : ''}: no cloud credentials are loaded`;
  const region = config.environment?.region ? `, region ${config.environment.region}` : '';
  const chain = { aws: 'the AWS default credential chain', gcp: 'Application Default Credentials', azure: 'DefaultAzureCredential' }[cloud];
  return `environment: ${cloud} (${CLOUD_NAMES[cloud]}${region}, from environment.type); credentials from ${chain}`;
}

/** Hints for what each cloud needs from the environment block, used by callers that build a cloud environment. */
export interface EnvironmentHints {
  /** A region to use when the config names none (e.g. the one in an ECR or Artifact Registry host). */
  region?: string;
}

/**
 * Makes cloud environments on demand, one per cloud, shared by the registry and the context store.
 * `environment.type` configures its cloud (its region); another cloud needed by a destination host or
 * a store URI gets that cloud's defaults (its own environment variables and credential chain). Each
 * cloud package is imported only when its environment is first asked for, so an agent with no cloud
 * configured loads no cloud SDK.
 */
export function createEnvironmentLoader(config: AgentConfig, env: Record<string, string | undefined>) {
  const made = new Map<string, Promise<unknown>>();
  const plain: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) plain[key] = value;
  const configured = configuredCloud(config);

  async function make<T extends CloudType>(type: T, hints: EnvironmentHints): Promise<CloudEnvironments[T]> {
    const region = (configured === type ? config.environment?.region : undefined) ?? hints.region;
    if (type === 'aws') {
      const { createAwsEnvironment } = await import('@launch/cloud-aws');
      const endpoints = awsEndpoints(env);
      return createAwsEnvironment({
        ...(region ? { region } : {}),
        env: plain,
        ...(Object.keys(endpoints).length > 0 ? { endpoints } : {}),
      }) as CloudEnvironments[T];
    }
    if (type === 'gcp') {
      const { createGcpEnvironment } = await import('@launch/cloud-gcp');
      return createGcpEnvironment({ ...(region ? { region } : {}), env: plain }) as CloudEnvironments[T];
    }
    const { createAzureEnvironment } = await import('@launch/cloud-azure');
    return createAzureEnvironment({}) as CloudEnvironments[T];
  }

  return {
    /** The cloud named by `environment.type`, if any. */
    configured,
    /** The environment of `type`, made once (per region hint) and shared. */
    get<T extends CloudType>(type: T, hints: EnvironmentHints = {}): Promise<CloudEnvironments[T]> {
      const key = `${type}:${configured === type ? '' : (hints.region ?? '')}`;
      let found = made.get(key) as Promise<CloudEnvironments[T]> | undefined;
      if (!found) {
        found = make(type, hints);
        made.set(key, found);
      }
      return found;
    },
  };
}

export type EnvironmentLoader = ReturnType<typeof createEnvironmentLoader>;
