import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LaunchError, LaunchValidationError, type CallContext } from '@launch/core';
import { closest, describeValue, zodIssues } from '@launch/core/internal';
import type { AuthClient, GoogleAuth } from 'google-auth-library';
import { ADC_CHAIN_TEXT, cancelledError, gcpErrorInfo, isAbortError, isNetworkError, safeCause } from './errors.js';
import { GCP_REGION_PATTERN, isGcpRegion, suggestGcpRegion } from './regions.js';
import { loadAuth } from './sdk.js';

/** The token URLs google-auth-library sends a service account's JWT grant to, whatever the key file's `token_uri` says. */
const GOOGLE_TOKEN_URLS = ['https://www.googleapis.com/oauth2/v4/token', 'https://oauth2.googleapis.com/token'];
const DEFAULT_SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];
/** Project ids: 6–30 of lower-case letters, digits and hyphens, starting with a letter (domain-scoped `example.com:proj` too). */
export const GCP_PROJECT_PATTERN = /^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

const optionsSchema = z
  .object({
    region: z.string().min(1).optional(),
    project: z.string().regex(GCP_PROJECT_PATTERN, 'a project id such as my-project-123').optional(),
    keyFile: z.string().min(1).optional(),
    scopes: z.array(z.string().url()).min(1).optional(),
    allowUnknownRegion: z.boolean().optional(),
    refreshMarginMs: z.number().int().min(0).optional(),
    now: z.custom<() => number>((v) => typeof v === 'function', 'a function returning milliseconds').optional(),
    env: z.record(z.string(), z.string().optional()).optional(),
  })
  .strict();

/** Options of {@link createGcpEnvironment}. */
export interface GcpEnvironmentOptions {
  /** The region the agent runs in (`environment.region`). Default `GOOGLE_CLOUD_REGION`. Required from one of them. */
  region?: string;
  /** The project (`environment.project`). Default ADC's project (the key file's `project_id`, gcloud's, the metadata server's), then `GOOGLE_CLOUD_PROJECT`. */
  project?: string;
  /** A credentials file to use instead of `GOOGLE_APPLICATION_CREDENTIALS` (service-account key, workload-identity-federation config). */
  keyFile?: string;
  /** OAuth scopes of the access token. Default `cloud-platform`. */
  scopes?: string[];
  /** Whether `verify` accepts a region missing from the built-in list ({@link GCP_REGIONS}). Default false. */
  allowUnknownRegion?: boolean;
  /** Renew the access token this long before it expires. Default 5 minutes. */
  refreshMarginMs?: number;
  /** Clock in ms, for token expiry. Default `Date.now`. */
  now?: () => number;
  /** Environment read for `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_CLOUD_REGION`, `GOOGLE_CLOUD_PROJECT`. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** An OAuth2 access token and when it expires (ms since the epoch). A secret: never log the token. */
export interface GcpAccessToken {
  token: string;
  expiresAt: number;
}

/** What `verify` found. */
export interface GcpIdentity {
  project: string;
  region: string;
  /** The service account's e-mail when the credentials are a key file, else undefined. */
  principal: string | undefined;
  /** Which credentials were used: `key file <path>`, or `application default credentials`. */
  credentialSource: string;
}

/** A Google Cloud environment (`environment.type: gcp`): region, project, credentials, and a check that they work. */
export interface GcpEnvironment {
  readonly type: 'gcp';
  readonly region: string;
  /** Where the region came from: `options` or `GOOGLE_CLOUD_REGION`. */
  readonly regionSource: string;
  /** The project when known without asking ADC (options, the key file's `project_id`, `GOOGLE_CLOUD_PROJECT`). */
  readonly project: string | undefined;
  /** The project: options, then ADC's project, then `GOOGLE_CLOUD_PROJECT`; a LaunchError when none. */
  resolveProject(ctx: CallContext): Promise<string>;
  /** An access token, cached until `refreshMarginMs` before it expires; concurrent callers share one request. */
  accessToken(ctx: CallContext): Promise<GcpAccessToken>;
  /** The google-auth-library client (for `@google-cloud/storage`'s `authClient`). Loads the library. */
  authClient(): Promise<AuthClient | GoogleAuth>;
  /** Gets a token (the credentials work) and checks the region is a real GCP region (with a "did you mean"). */
  verify(ctx: CallContext): Promise<GcpIdentity>;
}

/** The parts of a credentials file we read; the private key is never echoed. */
interface KeyFile {
  type: string;
  project_id?: string;
  client_email?: string;
  private_key?: string;
  private_key_id?: string;
  token_uri?: string;
}

function invalid(subject: string, issues: LaunchValidationError['issues']): LaunchValidationError {
  return new LaunchValidationError({ code: 'gcp.invalid_options', stage: 'agent', subject, issues });
}

/** Parses factory options with zod; values under secret-looking keys are never echoed. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, subject: string, keys: string[]): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw invalid(
    subject,
    zodIssues(result.error, input, (key) => closest(key, keys)),
  );
}

function keyFileError(path: string, source: string, what: string): LaunchError {
  return new LaunchError({
    code: 'gcp.invalid_key_file',
    stage: 'agent',
    category: 'PermissionDenied',
    retryable: false,
    message: `GCP credentials file ${describeValue(path, 200)} (${source}) ${what}`,
    hint: 'point GOOGLE_APPLICATION_CREDENTIALS at a service-account key (gcloud iam service-accounts keys create) or a workload-identity-federation config, or unset it to use the metadata server',
  });
}

/** Reads and checks a credentials file; errors name the file and the field, never its contents. */
export function readKeyFile(path: string, source: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw keyFileError(path, source, code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw keyFileError(path, source, 'is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw keyFileError(path, source, 'is not a JSON object');
  const file = json as Record<string, unknown>;
  if (typeof file.type !== 'string') throw keyFileError(path, source, 'has no "type" (expected "service_account", "external_account" or "authorized_user")');
  if (file.type === 'service_account') {
    if (typeof file.client_email !== 'string' || !file.client_email.includes('@'))
      throw keyFileError(path, source, 'has no "client_email" (a service-account e-mail)');
    if (typeof file.private_key !== 'string' || !/-----BEGIN (?:RSA )?PRIVATE KEY-----/.test(file.private_key))
      throw keyFileError(path, source, 'has no "private_key" in PEM form (value hidden)');
    if (file.token_uri !== undefined && (typeof file.token_uri !== 'string' || !/^https?:\/\//.test(file.token_uri)))
      throw keyFileError(path, source, `has a "token_uri" that is not a URL (found ${describeValue(file.token_uri, 80)})`);
  }
  return file as unknown as KeyFile;
}

function resolveRegion(region: string | undefined, env: Record<string, string | undefined>): { region: string; source: string } {
  const found = region
    ? { region, source: 'options' }
    : env.GOOGLE_CLOUD_REGION
      ? { region: env.GOOGLE_CLOUD_REGION, source: 'GOOGLE_CLOUD_REGION' }
      : undefined;
  if (!found) {
    throw invalid('GCP environment', [
      {
        path: 'region',
        expected: 'a GCP region such as us-central1',
        found: 'nothing',
        message: 'no region: set environment.region in the config, or GOOGLE_CLOUD_REGION',
      },
    ]);
  }
  if (!GCP_REGION_PATTERN.test(found.region)) {
    const suggestion = suggestGcpRegion(found.region);
    throw invalid('GCP environment', [
      {
        path: 'region',
        expected: 'a GCP region such as us-central1',
        found: `${describeValue(found.region)}${found.source === 'options' ? '' : ` in ${found.source}`}`,
        message: `region ${describeValue(found.region)}${found.source === 'options' ? '' : ` (from ${found.source})`} is not a GCP region name${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
      },
    ]);
  }
  return found;
}

/** A LaunchError for a failed token request, by what the token endpoint or the library said. */
export function tokenError(error: unknown, credentialSource: string, stage: 'agent' | 'build'): LaunchError {
  if (LaunchError.isInstance(error)) return error;
  if (isAbortError(error)) return cancelledError('gcp.cancelled', 'GCP access token', stage);
  const info = gcpErrorInfo(error);
  if (/Could not load the default credentials|Unable to detect a Project Id/i.test(info.message)) {
    return new LaunchError({
      code: 'gcp.no_credentials',
      stage,
      category: 'PermissionDenied',
      retryable: false,
      message: `no Google Cloud credentials found: Application Default Credentials tried ${ADC_CHAIN_TEXT}`,
      hint: 'set GOOGLE_APPLICATION_CREDENTIALS to a service-account key, run on GKE with workload identity, or run gcloud auth application-default login',
      cause: safeCause(error),
    });
  }
  if (isNetworkError(error)) {
    return new LaunchError({
      code: 'gcp.unavailable',
      stage,
      retryable: true,
      message: `the Google token endpoint did not answer (${info.networkCode}) for ${credentialSource}`,
      hint: "check the network path to oauth2.googleapis.com (or the key file's token_uri), or to the metadata server",
      cause: safeCause(error),
    });
  }
  const rejected =
    info.status === 400 ||
    info.status === 401 ||
    info.status === 403 ||
    info.reason === 'invalid_grant' ||
    info.reason === 'invalid_client' ||
    info.reason === 'unauthorized_client';
  return new LaunchError({
    code: rejected ? 'gcp.credentials_rejected' : 'gcp.token_failed',
    stage,
    category: 'PermissionDenied',
    retryable: !rejected && (info.status === undefined || info.status >= 500),
    message: `Google refused an access token for ${credentialSource}: ${info.reason ?? 'error'}${info.status ? ` (HTTP ${info.status})` : ''}`,
    hint: rejected
      ? 'the key was found but rejected: check the service-account key is not deleted or disabled (gcloud iam service-accounts keys list), and the machine clock is right'
      : 'see the cause',
    cause: safeCause(error),
  });
}

/**
 * The Google Cloud environment (`environment: { type: gcp, region, project }`).
 *
 * - Region: `options.region`, then `GOOGLE_CLOUD_REGION`; with neither, or with a malformed name,
 *   start-up fails (with a "did you mean"). `verify` also refuses a well-formed name that is not in the
 *   built-in list {@link GCP_REGIONS} (static, mid-2025), unless `allowUnknownRegion`.
 * - Project: `options.project`, then ADC's project (the key file's `project_id`, else what
 *   google-auth-library finds: gcloud's configuration or the metadata server), then `GOOGLE_CLOUD_PROJECT`.
 * - Credentials: Application Default Credentials. A service-account key file (`keyFile` or
 *   `GOOGLE_APPLICATION_CREDENTIALS`) is read here and its JWT grant sent to the file's `token_uri`
 *   (google-auth-library 9 always sends it to Google's URL); any other file type, gcloud's user
 *   credentials and the metadata server (GKE workload identity) go through `GoogleAuth`.
 *
 * google-auth-library is loaded on the first call.
 *
 * @example
 * const gcp = createGcpEnvironment({ region: 'us-central1', project: 'my-project' });
 * const { project, principal } = await gcp.verify({ logger });
 */
export function createGcpEnvironment(options: GcpEnvironmentOptions = {}): GcpEnvironment {
  const opts = parseWith(optionsSchema, options, 'GCP environment options', Object.keys(optionsSchema.shape));
  const env = opts.env ?? process.env;
  const { region, source } = resolveRegion(opts.region, env);
  const scopes = opts.scopes ?? DEFAULT_SCOPES;
  const now = opts.now ?? Date.now;
  const margin = opts.refreshMarginMs ?? 5 * 60_000;
  const keyPath = opts.keyFile ?? env.GOOGLE_APPLICATION_CREDENTIALS;
  const keySource = opts.keyFile ? 'keyFile option' : 'GOOGLE_APPLICATION_CREDENTIALS';
  const keyFile = keyPath ? readKeyFile(keyPath, keySource) : undefined;
  const credentialSource = keyPath ? `key file ${keyPath}` : 'application default credentials';
  const envProject = env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT;
  const knownProject = opts.project ?? keyFile?.project_id ?? envProject;

  let client: Promise<AuthClient | GoogleAuth> | undefined;
  const makeClient = async (): Promise<AuthClient | GoogleAuth> => {
    const auth = await loadAuth();
    if (keyFile?.type === 'service_account') {
      const transporter = new auth.DefaultTransporter();
      const tokenUri = keyFile.token_uri;
      if (tokenUri && !GOOGLE_TOKEN_URLS.includes(tokenUri)) {
        const request = transporter.request.bind(transporter) as (o: { url?: string }) => unknown;
        (transporter as { request: unknown }).request = (o: { url?: string }) =>
          request(typeof o.url === 'string' && GOOGLE_TOKEN_URLS.includes(o.url) ? { ...o, url: tokenUri } : o);
      }
      return new auth.JWT({ email: keyFile.client_email, key: keyFile.private_key, keyId: keyFile.private_key_id, scopes, transporter });
    }
    return new auth.GoogleAuth({ scopes, ...(keyPath ? { keyFilename: keyPath } : {}), ...(knownProject ? { projectId: knownProject } : {}) });
  };
  const getClient = () =>
    (client ??= makeClient().catch((error: unknown) => {
      client = undefined;
      throw error;
    }));

  let cached: GcpAccessToken | undefined;
  let inflight: Promise<GcpAccessToken> | undefined;
  const fetchToken = async (ctx: CallContext, stage: 'agent' | 'build', renew: boolean): Promise<GcpAccessToken> => {
    try {
      const c = await getClient();
      if (renew) {
        // The library keeps its own token until 5 minutes before expiry by its own clock: mark it
        // expired so that our margin (and clock) decide when a new one is fetched.
        const inner = ('getClient' in c ? await (c as GoogleAuth).getClient() : c) as AuthClient;
        inner.credentials = { ...inner.credentials, expiry_date: 1 };
      }
      const got: unknown = await c.getAccessToken();
      const token = typeof got === 'string' ? got : (got as { token?: unknown } | null | undefined)?.token;
      if (typeof token !== 'string' || token === '') {
        throw new LaunchError({
          code: 'gcp.protocol',
          stage,
          category: 'PermissionDenied',
          message: `the Google token endpoint answered without an access token for ${credentialSource}`,
          hint: "check the key file's token_uri is Google's OAuth2 token endpoint",
        });
      }
      const credentials = 'credentials' in c ? (c as AuthClient).credentials : undefined;
      const expiry = typeof credentials?.expiry_date === 'number' ? credentials.expiry_date : now() + 3600_000;
      ctx.logger.debug({ credentialSource, expiresAt: new Date(expiry).toISOString() }, 'gcp: access token fetched');
      return { token, expiresAt: expiry };
    } catch (error) {
      throw tokenError(error, credentialSource, stage);
    }
  };

  const environment: GcpEnvironment = {
    type: 'gcp',
    region,
    regionSource: source,
    project: knownProject,
    authClient: getClient,

    async accessToken(ctx) {
      if (cached && now() < cached.expiresAt - margin) return { ...cached };
      inflight ??= fetchToken(ctx, 'build', cached !== undefined).finally(() => {
        inflight = undefined;
      });
      cached = await inflight;
      return { ...cached };
    },

    async resolveProject(ctx) {
      if (opts.project) return opts.project;
      if (keyFile?.project_id) return keyFile.project_id;
      if (!keyFile) {
        try {
          const c = await getClient();
          const id = 'getProjectId' in c ? await (c as GoogleAuth).getProjectId() : undefined;
          if (id) return id;
        } catch (error) {
          ctx.logger.debug({ reason: gcpErrorInfo(error).message.slice(0, 200) }, 'gcp: ADC found no project');
        }
      }
      if (envProject) return envProject;
      throw new LaunchError({
        code: 'gcp.no_project',
        stage: 'agent',
        category: 'InvalidSpec',
        message: `no GCP project: set environment.project in the config; ${credentialSource} names none and GOOGLE_CLOUD_PROJECT is unset`,
        hint: 'add project: <project-id> under environment',
      });
    },

    async verify(ctx) {
      if (!opts.allowUnknownRegion && !isGcpRegion(region)) {
        const suggestion = suggestGcpRegion(region);
        throw new LaunchError({
          code: 'gcp.unknown_region',
          stage: 'agent',
          category: 'InvalidSpec',
          message: `"${region}" (from ${source}) is not a Google Cloud region${suggestion ? `: did you mean "${suggestion}"?` : ''}`,
          hint: `set environment.region to a region such as us-central1 (the list is built in, from mid-2025; allowUnknownRegion accepts a newer one)`,
        });
      }
      if (ctx.signal?.aborted) throw cancelledError('gcp.cancelled', 'GCP verify', 'agent');
      const project = await environment.resolveProject(ctx);
      cached = await fetchToken(ctx, 'agent', cached !== undefined);
      ctx.logger.debug({ project, region, credentialSource }, 'gcp: credentials verified');
      return { project, region, principal: keyFile?.client_email, credentialSource };
    },
  };
  return environment;
}
