import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { LaunchError, LaunchValidationError, type CallContext } from '@launch/core';
import { closest, describeValue, zodIssues } from '@launch/core/internal';
import { awsErrorInfo, cancelledError, isAbortError, isNetworkError, isNoCredentialsError, noCredentialsError, safeCause } from './errors.js';
import { loadCredentialProviders, loadSts } from './sdk.js';

/** AWS credentials (the SDK's `AwsCredentialIdentity`). Secrets: never log them. */
export interface AwsCredentialIdentity {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** A function returning credentials (the SDK's `AwsCredentialIdentityProvider`). */
export type AwsCredentialIdentityProvider = (props?: Record<string, unknown>) => Promise<AwsCredentialIdentity>;

/** AWS services this package talks to; each may get its own endpoint (tests, VPC endpoints, FIPS). */
export type AwsService = 's3' | 'ecr' | 'sts';

/** AWS region names: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, … */
export const AWS_REGION_PATTERN = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

const credentialsSchema = z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1), sessionToken: z.string().min(1).optional() }).strict();

const optionsSchema = z
  .object({
    region: z.string().regex(AWS_REGION_PATTERN, 'an AWS region such as us-east-1').optional(),
    profile: z.string().min(1).optional(),
    credentials: z
      .union([credentialsSchema, z.custom<AwsCredentialIdentityProvider>((v) => typeof v === 'function', 'a credential provider function')])
      .optional(),
    endpoints: z.object({ s3: z.url().optional(), ecr: z.url().optional(), sts: z.url().optional() }).strict().optional(),
    maxAttempts: z.number().int().min(1).max(10).optional(),
    env: z.record(z.string(), z.string().optional()).optional(),
  })
  .strict();

/** Options of {@link createAwsEnvironment}. */
export interface AwsEnvironmentOptions {
  /** The region the agent runs in (`environment.region`). Default `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the profile's `region` in the shared config file. */
  region?: string;
  /** Shared-config profile for the credential chain and the region. Default `AWS_PROFILE`, else `default`. */
  profile?: string;
  /**
   * Credentials to use instead of the default chain: static keys or a provider function. Meant for
   * tests and embedders; the agent leaves it unset so the default chain applies.
   */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Endpoint overrides per service, e.g. `{ sts: 'http://127.0.0.1:5000' }` for a test server. */
  endpoints?: Partial<Record<AwsService, string>>;
  /** SDK attempts per call (retries + 1). Default the SDK's 3. */
  maxAttempts?: number;
  /** Environment the region is read from. Default `process.env`. (The SDK's credential chain always reads `process.env`.) */
  env?: Record<string, string | undefined>;
}

/** Who the credentials belong to, from STS `GetCallerIdentity`. */
export interface AwsCallerIdentity {
  account: string;
  arn: string;
  userId: string;
  /** `aws`, `aws-cn`, `aws-us-gov`, … from the ARN. */
  partition: string;
}

/** The SDK client settings for one service: what the store and the registry build their clients from. */
export interface AwsClientConfig {
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  endpoint?: string;
  maxAttempts?: number;
}

/** An AWS environment (`environment.type: aws`): region, credentials, and a check that both work. */
export interface AwsEnvironment {
  readonly type: 'aws';
  readonly region: string;
  /** Where the region came from: `options`, `AWS_REGION`, `AWS_DEFAULT_REGION` or `profile <name>`. */
  readonly regionSource: string;
  readonly profile: string | undefined;
  /** Checks that credentials are found and accepted: STS `GetCallerIdentity`. */
  verify(ctx: CallContext): Promise<AwsCallerIdentity>;
  /** Client settings for `service`, in `region` (default the environment's). */
  clientConfig(service: AwsService, region?: string): AwsClientConfig;
}

function invalid(subject: string, issues: LaunchValidationError['issues']): LaunchValidationError {
  return new LaunchValidationError({ code: 'aws.invalid_options', stage: 'agent', subject, issues });
}

/** Parses factory options with zod; credentials are never echoed. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, subject: string, keys: string[]): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = zodIssues(result.error, input, (key) => closest(key, keys)).map((issue) =>
    issue.path.startsWith('credentials') ? { ...issue, found: '(hidden)', message: `expected ${issue.expected} (value hidden)` } : issue,
  );
  throw invalid(subject, issues);
}

/** `[profile name]` (or `[default]`) `region = …` from the shared config file, or undefined. */
export function regionFromSharedConfig(path: string, profile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const wanted = profile === 'default' ? ['default', 'profile default'] : [`profile ${profile}`];
  let inProfile = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const section = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (section) {
      inProfile = wanted.includes(section[1]!.replace(/\s+/g, ' '));
      continue;
    }
    const kv = /^region\s*=\s*(\S+)$/.exec(line);
    if (inProfile && kv) return kv[1];
  }
  return undefined;
}

function resolveRegion(opts: { region?: string; profile?: string }, env: Record<string, string | undefined>): { region: string; source: string } {
  if (opts.region) return { region: opts.region, source: 'options' };
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION'] as const) {
    const value = env[name];
    if (value) {
      if (!AWS_REGION_PATTERN.test(value)) {
        throw invalid('AWS environment', [
          {
            path: 'region',
            expected: 'an AWS region such as us-east-1',
            found: `${describeValue(value)} in ${name}`,
            message: `${name} is ${describeValue(value)}: expected an AWS region such as us-east-1`,
          },
        ]);
      }
      return { region: value, source: name };
    }
  }
  const profile = opts.profile ?? env.AWS_PROFILE ?? 'default';
  const configPath = env.AWS_CONFIG_FILE ?? join(env.HOME ?? homedir(), '.aws', 'config');
  const fromProfile = regionFromSharedConfig(configPath, profile);
  if (fromProfile && AWS_REGION_PATTERN.test(fromProfile)) return { region: fromProfile, source: `profile ${profile}` };
  throw invalid('AWS environment', [
    {
      path: 'region',
      expected: 'an AWS region such as us-east-1',
      found: fromProfile ? `${describeValue(fromProfile)} in profile ${profile} of ${configPath}` : 'nothing',
      message: `no region: set environment.region in the config, AWS_REGION, or region in profile "${profile}" of ${configPath}${fromProfile ? ` (it holds ${describeValue(fromProfile)}, not a region)` : ''}`,
    },
  ]);
}

/** `arn:<partition>:…` → partition. */
export function partitionOfArn(arn: string): string | undefined {
  return /^arn:([a-z-]+):/.exec(arn)?.[1];
}

/**
 * The AWS environment (`environment: { type: aws, region }`). The region comes from `options.region`,
 * then `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region` in the shared config file; with
 * none, start-up fails naming all of them. Credentials come from the SDK's default chain
 * (`fromNodeProviderChain`: environment, SSO, shared files, credential_process, web identity / IRSA,
 * container and instance metadata), resolved on first use and refreshed by the SDK before expiry.
 * The SDK itself is loaded only when a call is made.
 *
 * @example
 * const aws = createAwsEnvironment({ region: 'us-east-1' });
 * const { account, partition } = await aws.verify({ logger });
 */
export function createAwsEnvironment(options: AwsEnvironmentOptions = {}): AwsEnvironment {
  const opts = parseWith(optionsSchema, options, 'AWS environment options', Object.keys(optionsSchema.shape));
  const env = opts.env ?? process.env;
  const { region, source } = resolveRegion(opts, env);
  const profile = opts.profile ?? env.AWS_PROFILE;

  // One provider shared by every client: the chain runs once and its result is cached (and
  // refreshed before expiry) by the SDK's memoization.
  let chain: AwsCredentialIdentityProvider | undefined;
  const defaultChain: AwsCredentialIdentityProvider = async (props) => {
    if (!chain) {
      const { fromNodeProviderChain } = await loadCredentialProviders();
      chain = fromNodeProviderChain(profile ? { profile } : {});
    }
    return chain(props);
  };
  const credentials = opts.credentials ?? defaultChain;

  const environment: AwsEnvironment = {
    type: 'aws',
    region,
    regionSource: source,
    profile,
    clientConfig(service, inRegion) {
      const config: AwsClientConfig = { region: inRegion ?? region, credentials };
      const endpoint = opts.endpoints?.[service];
      if (endpoint) config.endpoint = endpoint;
      if (opts.maxAttempts) config.maxAttempts = opts.maxAttempts;
      return config;
    },
    async verify(ctx) {
      const { STSClient, GetCallerIdentityCommand } = await loadSts();
      const client = new STSClient(environment.clientConfig('sts'));
      try {
        const out = await client.send(new GetCallerIdentityCommand({}), { abortSignal: ctx.signal });
        const arn = out.Arn ?? '';
        const partition = partitionOfArn(arn);
        if (!out.Account || !partition) {
          throw new LaunchError({
            code: 'aws.protocol',
            stage: 'agent',
            message: `STS GetCallerIdentity answered without ${!out.Account ? 'an account' : 'an ARN of the form arn:<partition>:…'} (found ${describeValue(out.Account ?? arn)})`,
            hint: 'check the sts endpoint is AWS STS',
          });
        }
        const identity = { account: out.Account, arn, userId: out.UserId ?? '', partition };
        ctx.logger.debug({ account: identity.account, partition, region }, 'aws: credentials verified');
        return identity;
      } catch (error) {
        if (LaunchError.isInstance(error)) throw error;
        if (isAbortError(error)) throw cancelledError('aws.cancelled', 'AWS GetCallerIdentity', 'agent');
        if (isNoCredentialsError(error)) throw noCredentialsError({ what: 'AWS environment', profile, stage: 'agent', category: 'PermissionDenied' }, error);
        const info = awsErrorInfo(error);
        if (isNetworkError(error)) {
          throw new LaunchError({
            code: 'aws.unavailable',
            stage: 'agent',
            retryable: true,
            message: `AWS STS in ${region} did not answer (${info.networkCode ?? info.name})`,
            hint: 'check the network path to sts, or the sts endpoint option',
            cause: safeCause(error),
          });
        }
        const rejected = info.status === 403 || /InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken|AccessDenied|UnrecognizedClient/.test(info.name);
        throw new LaunchError({
          code: rejected ? 'aws.credentials_rejected' : 'aws.sts_failed',
          stage: 'agent',
          category: rejected ? 'PermissionDenied' : undefined,
          retryable: info.status !== undefined && info.status >= 500,
          message: `AWS STS GetCallerIdentity failed in ${region}: ${info.name}${info.status ? ` (HTTP ${info.status})` : ''}`,
          hint: rejected
            ? info.name === 'ExpiredToken'
              ? 'the session token has expired: refresh the credentials (aws sso login, or new role credentials)'
              : 'the credentials were found but AWS rejected them: check the access key is active and belongs to this partition'
            : 'see the cause',
          cause: safeCause(error),
        });
      } finally {
        client.destroy();
      }
    },
  };
  return environment;
}
