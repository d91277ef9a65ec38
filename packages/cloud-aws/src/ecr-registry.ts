import { z } from 'zod';
import { LaunchError, LaunchValidationError, type CallContext, type Registry, type RegistryCredentials } from '@launch/core';
import { describeValue } from '@launch/core/internal';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { parseWith, type AwsEnvironment } from './environment.js';
import { ecrRepository, parseEcrUri, type EcrRepository } from './ecr-uri.js';
import { awsErrorInfo, cancelledError, isAbortError, isNetworkError, isNoCredentialsError, noCredentialsError, safeCause } from './errors.js';
import { loadEcr } from './sdk.js';

const optionsSchema = z
  .object({
    uri: z.string().min(1).optional(),
    accountId: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    repository: z.string().min(1).optional(),
    environment: z.custom<AwsEnvironment>(
      (v) => typeof v === 'object' && v !== null && (v as AwsEnvironment).type === 'aws' && typeof (v as AwsEnvironment).clientConfig === 'function',
      'an AwsEnvironment from createAwsEnvironment()',
    ),
    refreshMarginMs: z.number().int().min(0).optional(),
    now: z.custom<() => number>((v) => typeof v === 'function', 'a function returning milliseconds').optional(),
  })
  .strict();

/** Options of {@link createEcrRegistry}: a `uri`, or all of `accountId`, `region` and `repository`. */
export interface EcrRegistryOptions {
  /** `[https://]<account>.dkr.ecr.<region>.amazonaws.com/<repository>` (`builder.destination`, `registry.uri`). */
  uri?: string;
  accountId?: string;
  region?: string;
  repository?: string;
  /** Credentials and endpoints; the ECR client runs in the repository's region. */
  environment: AwsEnvironment;
  /** Renew the authorization token this long before it expires. Default 15 minutes. */
  refreshMarginMs?: number;
  /** Clock in ms, for token expiry. Default `Date.now`. */
  now?: () => number;
}

/** The ECR registry: the `Registry` contract plus the repository's parts and kaniko's settings. */
export interface EcrRegistry extends Registry {
  readonly name: 'ecr';
  readonly account: string;
  readonly region: string;
  readonly repository: string;
  /** `<account>.dkr.ecr.<region>.amazonaws.com` */
  readonly host: string;
  /** Environment kaniko needs to push here with its ECR credential helper: `AWS_REGION`. */
  readonly kanikoEnv: Readonly<Record<string, string>>;
}

/** W&B's `registry:` block for ECR (snake_case, as in launch-config.yaml). */
export interface WandbEcrRegistryConfig {
  type?: string;
  uri?: string;
  account_id?: string;
  region?: string;
  /** The key W&B's docs and `from_config` read. */
  repository?: string;
  /** The key W&B's schema allowed instead (its bug: the two never met, so only `uri` worked). */
  repo_name?: string;
}

/**
 * Options for {@link createEcrRegistry} from W&B's `registry:` block. W&B's `from_config` reads
 * `repository` while its schema allows only `repo_name`, so only `uri` ever worked there; both keys
 * work here (they must agree when both are given).
 */
export function ecrOptionsFromWandbConfig(config: WandbEcrRegistryConfig, environment: AwsEnvironment): EcrRegistryOptions {
  if (config.repository && config.repo_name && config.repository !== config.repo_name) {
    throw new LaunchValidationError({
      code: 'registry.invalid_uri',
      stage: 'agent',
      subject: 'ECR registry config',
      issues: [
        {
          path: 'registry.repo_name',
          expected: `the same as registry.repository (${describeValue(config.repository)})`,
          found: describeValue(config.repo_name),
          message: `repository ${describeValue(config.repository)} and repo_name ${describeValue(config.repo_name)} disagree: give one`,
        },
      ],
    });
  }
  const repository = config.repository ?? config.repo_name;
  return {
    environment,
    ...(config.uri ? { uri: config.uri } : {}),
    ...(config.account_id ? { accountId: config.account_id } : {}),
    ...(config.region ? { region: config.region } : {}),
    ...(repository ? { repository } : {}),
  };
}

interface CachedCredentials {
  credentials: RegistryCredentials;
  expiresAt: number;
}

/** An image reference's tag or digest within `repo` (`<host>/<repository>[:tag|@digest]`). */
function imageIdOf(imageUri: string, repo: EcrRepository): { imageTag?: string; imageDigest?: string } {
  const stripped = imageUri.replace(/^https:\/\//, '');
  const wrong = () =>
    new LaunchError({
      code: 'registry.wrong_registry',
      stage: 'build',
      message: `image ${describeValue(imageUri, 200)} is not in the ECR repository ${repo.uri}`,
      hint: `check images against the registry they are pushed to (${repo.uri}:<tag>)`,
    });
  if (!stripped.startsWith(`${repo.uri}`)) throw wrong();
  const rest = stripped.slice(repo.uri.length);
  if (rest === '') return { imageTag: 'latest' };
  const digest = /^@(sha256:[a-f0-9]{64})$/.exec(rest);
  if (digest) return { imageDigest: digest[1] };
  const tag = /^:([\w][\w.-]{0,127})$/.exec(rest);
  if (tag) return { imageTag: tag[1] };
  if (rest.startsWith('/') || /^[./\w-]/.test(rest)) throw wrong();
  throw new LaunchError({
    code: 'registry.invalid_reference',
    stage: 'build',
    category: 'InvalidSpec',
    message: `image ${describeValue(imageUri, 200)} has an invalid tag or digest ${describeValue(rest)}`,
    hint: 'tags are up to 128 of letters, digits, _ . -; digests are @sha256:<64 hex>',
  });
}

/**
 * The Amazon ECR registry (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>`), by W&B's URI rule.
 *
 * - `credentials()`: `GetAuthorizationToken`, decoded from base64 `AWS:<password>` into username `AWS`
 *   and the password; cached until the token's `expiresAt` minus `refreshMarginMs`, and concurrent
 *   callers share one request.
 * - `imageExists()`: `DescribeImages` for the tag (or digest): `ImageNotFoundException` → false,
 *   `RepositoryNotFoundException` → a LaunchError naming the repository.
 * - `needsPullSecret` is true: W&B gives Kubernetes jobs an `imagePullSecrets` for every registry
 *   other than the local one and ACR.
 *
 * The ECR client runs in the repository's region, with the environment's credentials and endpoints.
 *
 * @example
 * const registry = createEcrRegistry({ uri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch', environment: aws });
 * await registry.imageExists('123456789012.dkr.ecr.us-east-1.amazonaws.com/launch:3f2a9c1e', { logger });
 */
export function createEcrRegistry(options: EcrRegistryOptions): EcrRegistry {
  const opts = parseWith(optionsSchema, options, 'ECR registry options', Object.keys(optionsSchema.shape));
  const parts = [opts.accountId, opts.region, opts.repository];
  let repo: EcrRepository;
  if (opts.uri) {
    if (parts.some((p) => p !== undefined)) {
      throw new LaunchValidationError({
        code: 'registry.invalid_uri',
        stage: 'agent',
        subject: 'ECR registry options',
        issues: [
          {
            path: 'uri',
            expected: 'uri, or accountId + region + repository',
            found: 'both',
            message: 'give either uri or accountId, region and repository, not both',
          },
        ],
      });
    }
    repo = parseEcrUri(opts.uri);
    if (repo.tag) {
      throw new LaunchValidationError({
        code: 'registry.invalid_uri',
        stage: 'agent',
        subject: 'ECR registry options',
        issues: [
          {
            path: 'uri',
            expected: 'a repository without a tag',
            found: describeValue(opts.uri, 120),
            message: `names a tag (${describeValue(repo.tag)}): give the repository only, ${repo.uri}`,
          },
        ],
      });
    }
  } else {
    const missing = (['accountId', 'region', 'repository'] as const).filter((k) => opts[k] === undefined);
    if (missing.length) {
      throw new LaunchValidationError({
        code: 'registry.invalid_uri',
        stage: 'agent',
        subject: 'ECR registry options',
        issues: missing.map((k) => ({
          path: k,
          expected: 'a string',
          found: 'nothing',
          message: `missing: give uri, or all of accountId, region and repository`,
        })),
      });
    }
    repo = ecrRepository({ account: opts.accountId!, region: opts.region!, repository: opts.repository! }, 'repository');
  }
  const environment = opts.environment;
  const now = opts.now ?? Date.now;
  const margin = opts.refreshMarginMs ?? 15 * 60_000;
  const repositoryArn = `arn:aws:ecr:${repo.region}:${repo.account}:repository/${repo.repository}`;

  let client: Promise<ECRClient> | undefined;
  const getClient = () => (client ??= loadEcr().then(({ ECRClient }) => new ECRClient(environment.clientConfig('ecr', repo.region))));

  const fail = (error: unknown, action: string, permission: string, resource: string): LaunchError => {
    if (LaunchError.isInstance(error)) return error;
    if (isAbortError(error)) return cancelledError('registry.cancelled', `ECR ${action} for ${repo.uri}`, 'build');
    if (isNoCredentialsError(error))
      return noCredentialsError(
        { what: `ECR registry ${repo.host}`, profile: environment.profile, stage: 'build', category: 'RegistryAuth', code: 'registry.credentials' },
        error,
      );
    const info = awsErrorInfo(error);
    const cause = safeCause(error);
    if (isNetworkError(error)) {
      return new LaunchError({
        code: 'registry.unavailable',
        stage: 'build',
        retryable: true,
        message: `ECR in ${repo.region} did not answer ${action} (${info.networkCode ?? info.name})`,
        hint: 'check the network path to the ECR API, or the ecr endpoint option',
        cause,
      });
    }
    if (info.name === 'RepositoryNotFoundException') {
      return new LaunchError({
        code: 'registry.repository_not_found',
        stage: 'build',
        category: 'RegistryAuth',
        message: `ECR repository "${repo.repository}" does not exist in account ${repo.account}, region ${repo.region}`,
        hint: `create it (aws ecr create-repository --repository-name ${repo.repository} --region ${repo.region}), or fix the destination`,
        cause,
      });
    }
    if (info.status === 403 || /AccessDenied|UnrecognizedClient|InvalidSignature|ExpiredToken|InvalidClientTokenId/.test(info.name)) {
      const denied = /AccessDenied/.test(info.name);
      return new LaunchError({
        code: 'registry.auth',
        stage: 'build',
        category: 'RegistryAuth',
        message: `ECR refused ${action} for ${repo.uri}: ${info.name}`,
        hint:
          denied || info.status === 403
            ? `grant ${permission} on ${resource} (see the agent's IAM policy)`
            : 'the credentials were rejected: check the access key, or refresh an expired session',
        cause,
      });
    }
    return new LaunchError({
      code: 'registry.protocol',
      stage: 'build',
      retryable: (info.status !== undefined && (info.status >= 500 || info.status === 429)) || /Throttl|ServerException/.test(info.name),
      message: `ECR ${action} for ${repo.uri} failed: ${info.name}${info.status ? ` (HTTP ${info.status})` : ''}`,
      hint: 'see the cause',
      cause,
    });
  };

  let cached: CachedCredentials | undefined;
  let inflight: Promise<CachedCredentials> | undefined;

  const fetchToken = async (ctx: CallContext): Promise<CachedCredentials> => {
    const ecr = await getClient();
    const { GetAuthorizationTokenCommand } = await loadEcr();
    let out;
    try {
      out = await ecr.send(new GetAuthorizationTokenCommand({}), { abortSignal: ctx.signal });
    } catch (error) {
      throw fail(error, 'GetAuthorizationToken', 'ecr:GetAuthorizationToken', '"*"');
    }
    const data = out.authorizationData?.[0];
    const decoded = typeof data?.authorizationToken === 'string' ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (!data || colon <= 0 || colon === decoded.length - 1) {
      throw new LaunchError({
        code: 'registry.protocol',
        stage: 'build',
        category: 'RegistryAuth',
        message: `ECR GetAuthorizationToken for ${repo.host} answered without a token of the form base64(<user>:<password>)`,
        hint: 'check the ecr endpoint is Amazon ECR',
      });
    }
    const expiresAt = data.expiresAt instanceof Date ? data.expiresAt.getTime() : now() + 60 * 60_000;
    ctx.logger.debug({ registry: repo.host, expiresAt: new Date(expiresAt).toISOString() }, 'ecr: authorization token fetched');
    return { credentials: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }, expiresAt };
  };

  const registry: EcrRegistry = {
    specificationVersion: 'v1',
    name: 'ecr',
    uri: repo.uri,
    account: repo.account,
    region: repo.region,
    repository: repo.repository,
    host: repo.host,
    needsPullSecret: true,
    kanikoEnv: Object.freeze({ AWS_REGION: repo.region }),

    async credentials(ctx: CallContext): Promise<RegistryCredentials> {
      if (cached && now() < cached.expiresAt - margin) return { ...cached.credentials };
      inflight ??= fetchToken(ctx).finally(() => {
        inflight = undefined;
      });
      cached = await inflight;
      return { ...cached.credentials };
    },

    async imageExists(imageUri: string, ctx: CallContext): Promise<boolean> {
      const imageId = imageIdOf(imageUri, repo);
      const ecr = await getClient();
      const { DescribeImagesCommand } = await loadEcr();
      try {
        const out = await ecr.send(new DescribeImagesCommand({ registryId: repo.account, repositoryName: repo.repository, imageIds: [imageId] }), {
          abortSignal: ctx.signal,
        });
        return (out.imageDetails?.length ?? 0) > 0;
      } catch (error) {
        if (awsErrorInfo(error).name === 'ImageNotFoundException') return false;
        throw fail(error, 'DescribeImages', 'ecr:DescribeImages', repositoryArn);
      }
    },
  };
  return registry;
}

/**
 * The factory `selectRegistry` takes as `options.cloud.ecr`: `(uri) => Registry`.
 *
 * @example
 * const registry = selectRegistry(destination, { cloud: { ecr: ecrRegistryFactory(aws) } });
 */
export function ecrRegistryFactory(
  environment: AwsEnvironment,
  extra: Omit<EcrRegistryOptions, 'uri' | 'environment' | 'accountId' | 'region' | 'repository'> = {},
): (uri: string) => EcrRegistry {
  return (uri: string) => createEcrRegistry({ ...extra, uri, environment });
}
