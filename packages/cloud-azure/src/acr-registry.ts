import { z } from 'zod';
import { LaunchError, LaunchValidationError, type CallContext, type Registry, type RegistryCredentials } from '@launch/core';
import { describeValue } from '@launch/core/internal';
import { jwtClaims, parseWith, type AzureEnvironment } from './environment.js';
import { azureErrorInfo, isAbortError, redactAzureText, safeCause, tokenError } from './errors.js';
import { httpsRequest, type HttpsAnswer } from './https-request.js';

/** The user name ACR expects with a refresh token as the password (`az acr login --expose-token`). */
export const ACR_REFRESH_TOKEN_USER = '00000000-0000-0000-0000-000000000000';
/** The AAD scope whose token ACR exchanges (what `az acr login` uses). */
export const ACR_DEFAULT_AAD_SCOPE = 'https://management.azure.com/.default';

/** W&B's ACR pattern (`registry/utils.py`). Its repository is one segment; nested repositories are accepted here too. */
export const WANDB_ACR_PATTERN = /^(?:https:\/\/)?([\w]+)\.azurecr\.io\/(?<repository>[\w-]+):?(?<tag>.*)/;
const ACR_URI = /^(?:https:\/\/)?(?<name>[A-Za-z0-9]{5,50})\.azurecr\.io\/(?<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)\/?$/;
const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const optionsSchema = z
  .object({
    uri: z.string().min(1),
    environment: z.custom<AzureEnvironment>(
      (v) => typeof v === 'object' && v !== null && (v as AzureEnvironment).type === 'azure' && typeof (v as AzureEnvironment).getToken === 'function',
      'an AzureEnvironment from createAzureEnvironment()',
    ),
    endpoint: z.url({ protocol: /^https$/ }).optional(),
    ca: z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'PEM certificates' }).optional(),
    aadScope: z
      .string()
      .regex(/^https:\/\/\S+\/\.default$/, 'an AAD scope ending in /.default')
      .optional(),
    tenantId: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, 'a tenant id (GUID) or domain')
      .optional(),
    pullSecret: z.boolean().optional(),
    refreshMarginMs: z.number().int().min(0).optional(),
    timeoutMs: z.number().int().min(100).optional(),
    now: z.custom<() => number>((v) => typeof v === 'function', 'a function returning milliseconds').optional(),
  })
  .strict();

/** Options of {@link createAcrRegistry}. */
export interface AcrRegistryOptions {
  /** `[https://]<name>.azurecr.io/<repository>` (`builder.destination`, `registry.uri`), without a tag. */
  uri: string;
  /** Whose AAD token is exchanged for the registry's refresh token. */
  environment: AzureEnvironment;
  /** Where to send the registry's requests instead of `https://<name>.azurecr.io` (tests; a private endpoint). Must be https. */
  endpoint?: string;
  /** PEM CA certificates to trust for the registry instead of the system's (tests, TLS-inspecting proxies). */
  ca?: string;
  /** The AAD scope to exchange. Default `https://management.azure.com/.default` (as `az acr login`). */
  aadScope?: string;
  /** The tenant sent with the exchange. Default the environment's, else the AAD token's `tid`. */
  tenantId?: string;
  /**
   * Whether pods need an image-pull secret. Default false, as in W&B (an AKS cluster pulls from ACR
   * with its kubelet identity, `az aks update --attach-acr`); set true for a cluster that cannot.
   */
  pullSecret?: boolean;
  /** Renew tokens this long before they expire. Default 5 minutes. */
  refreshMarginMs?: number;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
  /** Clock in ms, for token expiry. Default `Date.now`. */
  now?: () => number;
}

/** The ACR registry: the `Registry` contract plus its login server and kaniko's settings. */
export interface AcrRegistry extends Registry {
  readonly name: 'acr';
  /** `<name>.azurecr.io` */
  readonly host: string;
  readonly repository: string;
  /**
   * What kaniko needs to push here with workload identity, as W&B sets it up: the docker config's
   * `credHelpers` entry (`acr-env`) and the pod label `azure.workload.identity/use=true`.
   */
  readonly kaniko: { readonly credHelpers: Readonly<Record<string, string>>; readonly podLabels: Readonly<Record<string, string>> };
}

/** Parses `[https://]<name>.azurecr.io/<repository>`: login server (lower-cased) and repository. */
export function parseAcrUri(uri: unknown, path = 'uri'): { host: string; repository: string } {
  const m = typeof uri === 'string' ? ACR_URI.exec(uri) : null;
  if (!m) {
    const tagged = typeof uri === 'string' && /\.azurecr\.io\/[^:]+:/.test(uri);
    throw new LaunchValidationError({
      code: 'registry.invalid_uri',
      stage: 'agent',
      subject: 'ACR registry options',
      issues: [
        {
          path,
          expected: '[https://]<registry name>.azurecr.io/<repository> (lower-case repository, no tag)',
          found: describeValue(uri, 200),
          message: tagged ? 'names a tag: give the repository only' : 'is not an Azure Container Registry repository',
        },
      ],
    });
  }
  return { host: `${m.groups!.name!.toLowerCase()}.azurecr.io`, repository: m.groups!.repository! };
}

interface Cached {
  value: string;
  expiresAt: number;
}

function expiryOf(token: string, fallbackMs: number, now: number): number {
  const exp = jwtClaims(token).exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : now + fallbackMs;
}

/**
 * The Azure Container Registry (`<name>.azurecr.io/<repository>`), picked by W&B's host rule.
 *
 * - `credentials()`: the environment's AAD token (`aadScope`) exchanged at
 *   `POST https://<registry>/oauth2/exchange` (`grant_type=access_token`, `service`, `tenant`,
 *   `access_token`) for an ACR refresh token, returned as user `00000000-0000-0000-0000-000000000000`
 *   with the refresh token as password: what `docker login` takes. W&B's ACR registry has no
 *   credentials at all. Cached until the token's `exp` minus `refreshMarginMs`; concurrent callers share one exchange.
 * - `imageExists()`: an ACR access token for `repository:<repo>:pull` from `POST /oauth2/token`
 *   (cached until expiry), then `HEAD /v2/<repo>/manifests/<tag or digest>`: 200 → true, 404 → false.
 * - `needsPullSecret`: false unless `pullSecret` (W&B creates no pull secret for ACR).
 *
 * Errors are LaunchErrors of category `RegistryAuth` naming the registry; no token reaches a message.
 *
 * @example
 * const acr = createAcrRegistry({ uri: 'myreg.azurecr.io/launch', environment: createAzureEnvironment() });
 * const { username, password } = (await acr.credentials({ logger }))!;
 */
export function createAcrRegistry(options: AcrRegistryOptions): AcrRegistry {
  const opts = parseWith(optionsSchema, options, 'ACR registry options', Object.keys(optionsSchema.shape), ['environment', 'ca']);
  const { host, repository } = parseAcrUri(opts.uri);
  const uri = `${host}/${repository}`;
  const environment = opts.environment;
  const base = opts.endpoint ? opts.endpoint.replace(/\/+$/, '') : `https://${host}`;
  const now = opts.now ?? Date.now;
  const margin = opts.refreshMarginMs ?? 5 * 60_000;
  const scope = opts.aadScope ?? ACR_DEFAULT_AAD_SCOPE;

  let refresh: Cached | undefined;
  let refreshing: Promise<string> | undefined;
  const access = new Map<string, Cached>();
  const accessing = new Map<string, Promise<string>>();

  const authError = (message: string, hint: string, cause?: unknown, retryable = false) =>
    new LaunchError({
      code: 'registry.auth_failed',
      stage: 'build',
      category: 'RegistryAuth',
      retryable,
      message,
      hint,
      cause: cause === undefined ? undefined : safeCause(cause),
    });

  const call = async (
    what: string,
    path: string,
    init: { method: string; headers?: Record<string, string>; body?: string },
    ctx: CallContext,
  ): Promise<HttpsAnswer> => {
    try {
      return await httpsRequest(new URL(path, `${base}/`), {
        ...init,
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        timeoutMs: opts.timeoutMs ?? 30_000,
      });
    } catch (error) {
      if (isAbortError(error) || ctx.signal?.aborted)
        throw new LaunchError({ code: 'registry.cancelled', stage: 'build', message: `ACR registry ${host}: ${what}: cancelled` });
      const info = azureErrorInfo(error);
      throw new LaunchError({
        code: 'registry.unavailable',
        stage: 'build',
        category: 'RegistryAuth',
        retryable: true,
        message: `ACR registry ${host} did not answer ${what} (${info.code ?? info.name})`,
        hint: `check the network path to ${base}`,
        cause: safeCause(error),
      });
    }
  };

  const serverMessage = (answer: HttpsAnswer): string => {
    try {
      const parsed = JSON.parse(answer.body) as { errors?: Array<{ code?: unknown; message?: unknown }>; error?: unknown; error_description?: unknown };
      const first = parsed.errors?.[0];
      const text = first
        ? `${String(first.code ?? '')} ${String(first.message ?? '')}`
        : `${String(parsed.error ?? '')} ${String(parsed.error_description ?? '')}`;
      return redactAzureText(text.trim()).slice(0, 300);
    } catch {
      return '';
    }
  };

  const exchange = async (ctx: CallContext): Promise<string> => {
    let aad;
    try {
      aad = await (await environment.credential()).getToken(scope, { abortSignal: ctx.signal as never });
      if (!aad?.token) throw Object.assign(new Error('the credential returned no token'), { name: 'CredentialUnavailableError' });
    } catch (error) {
      throw tokenError(
        { what: `ACR registry ${host}`, scope, chain: environment.chain, stage: 'build', category: 'RegistryAuth', codePrefix: 'registry' },
        error,
      );
    }
    const tid = jwtClaims(aad.token).tid;
    const tenant = opts.tenantId ?? environment.tenantId ?? (typeof tid === 'string' ? tid : undefined);
    const body = new URLSearchParams({ grant_type: 'access_token', service: host, ...(tenant ? { tenant } : {}), access_token: aad.token }).toString();
    const answer = await call(
      'the token exchange (POST /oauth2/exchange)',
      'oauth2/exchange',
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body },
      ctx,
    );
    if (answer.status === 200) {
      let token: unknown;
      try {
        token = (JSON.parse(answer.body) as { refresh_token?: unknown }).refresh_token;
      } catch {
        token = undefined;
      }
      if (typeof token !== 'string' || token === '')
        throw authError(`ACR registry ${host}: /oauth2/exchange answered 200 without a refresh_token`, `check that ${base} is an Azure Container Registry`);
      refresh = { value: token, expiresAt: expiryOf(token, 60 * 60_000, now()) };
      return token;
    }
    const detail = serverMessage(answer);
    if (answer.status === 401 || answer.status === 403) {
      throw authError(
        `ACR registry ${host} refused the Azure AD token in /oauth2/exchange (HTTP ${answer.status}${detail ? `: ${detail}` : ''})`,
        `grant the agent's identity (${environment.chain.split(':')[0]}) the role AcrPush on the registry (AcrPull to check images only); the token must be for the registry's tenant${tenant ? ` (sent ${tenant})` : ''}`,
      );
    }
    throw authError(
      `ACR registry ${host}: /oauth2/exchange answered HTTP ${answer.status}${detail ? `: ${detail}` : ''}`,
      answer.status === 404 ? `check that ${host} is an Azure Container Registry login server` : 'retry later; see the registry status',
      undefined,
      answer.status >= 500 || answer.status === 429,
    );
  };

  const refreshToken = (ctx: CallContext): Promise<string> => {
    if (refresh && refresh.expiresAt - margin > now()) return Promise.resolve(refresh.value);
    refreshing ??= exchange(ctx).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  const accessToken = (repo: string, ctx: CallContext): Promise<string> => {
    const cached = access.get(repo);
    if (cached && cached.expiresAt - margin > now()) return Promise.resolve(cached.value);
    let pending = accessing.get(repo);
    if (!pending) {
      pending = (async () => {
        const token = await refreshToken(ctx);
        const body = new URLSearchParams({ grant_type: 'refresh_token', service: host, scope: `repository:${repo}:pull`, refresh_token: token }).toString();
        const answer = await call(
          'the access token request (POST /oauth2/token)',
          'oauth2/token',
          { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body },
          ctx,
        );
        if (answer.status === 401) refresh = undefined;
        let value: unknown;
        try {
          value = answer.status === 200 ? (JSON.parse(answer.body) as { access_token?: unknown }).access_token : undefined;
        } catch {
          value = undefined;
        }
        if (typeof value !== 'string' || value === '') {
          const detail = serverMessage(answer);
          throw authError(
            `ACR registry ${host}: /oauth2/token for repository:${repo}:pull answered HTTP ${answer.status}${detail ? `: ${detail}` : ''}`,
            `grant the agent's identity AcrPull (or AcrPush) on the registry`,
            undefined,
            answer.status >= 500,
          );
        }
        access.set(repo, { value, expiresAt: expiryOf(value, 5 * 60_000, now()) });
        return value;
      })().finally(() => accessing.delete(repo));
      accessing.set(repo, pending);
    }
    return pending;
  };

  const referenceOf = (imageUri: string): string => {
    const stripped = typeof imageUri === 'string' ? imageUri.replace(/^https:\/\//, '') : '';
    const wrong = () =>
      new LaunchError({
        code: 'registry.wrong_registry',
        stage: 'build',
        message: `image ${describeValue(imageUri, 200)} is not in the ACR repository ${uri}`,
        hint: `check images against the registry they are pushed to (${uri}:<tag>)`,
      });
    if (!stripped.toLowerCase().startsWith(uri)) throw wrong();
    const rest = stripped.slice(uri.length);
    if (rest === '') return 'latest';
    const digest = /^@(sha256:[a-f0-9]{64})$/.exec(rest);
    if (digest) return digest[1]!;
    const tag = /^:([\w][\w.-]{0,127})$/.exec(rest);
    if (tag) return tag[1]!;
    if (rest.startsWith('/') || /^[./\w-]/.test(rest)) throw wrong();
    throw new LaunchError({
      code: 'registry.invalid_reference',
      stage: 'build',
      category: 'InvalidSpec',
      message: `image ${describeValue(imageUri, 200)} has an invalid tag or digest ${describeValue(rest)}`,
      hint: 'tags are up to 128 of letters, digits, _ . -; digests are @sha256:<64 hex>',
    });
  };

  return {
    specificationVersion: 'v1',
    name: 'acr',
    uri,
    host,
    repository,
    needsPullSecret: opts.pullSecret ?? false,
    kaniko: { credHelpers: { [host]: 'acr-env' }, podLabels: { 'azure.workload.identity/use': 'true' } },

    async credentials(ctx: CallContext): Promise<RegistryCredentials> {
      const password = await refreshToken(ctx);
      ctx.logger.debug({ registry: host }, 'acr registry: refresh token ready');
      return { username: ACR_REFRESH_TOKEN_USER, password };
    },

    async imageExists(imageUri: string, ctx: CallContext): Promise<boolean> {
      const reference = referenceOf(imageUri);
      for (let attempt = 0; ; attempt++) {
        const token = await accessToken(repository, ctx);
        const answer = await call(
          `HEAD /v2/${repository}/manifests/${reference}`,
          `v2/${repository}/manifests/${reference}`,
          { method: 'HEAD', headers: { authorization: `Bearer ${token}`, accept: MANIFEST_TYPES } },
          ctx,
        );
        if (answer.status === 200) return true;
        if (answer.status === 404) return false;
        if (answer.status === 401 && attempt === 0) {
          access.delete(repository); // expired or revoked early: get a fresh one once
          continue;
        }
        if (answer.status === 401 || answer.status === 403) {
          throw authError(
            `ACR registry ${host} refused to show ${repository}:${reference} (HTTP ${answer.status})`,
            `grant the agent's identity AcrPull (or AcrPush) on the registry`,
          );
        }
        throw new LaunchError({
          code: 'registry.failed',
          stage: 'build',
          retryable: answer.status >= 500 || answer.status === 429,
          message: `ACR registry ${host}: HEAD /v2/${repository}/manifests/${reference} answered HTTP ${answer.status}`,
          hint: 'retry later; see the registry status',
        });
      }
    },
  };
}

/**
 * The factory `selectRegistry` takes in `options.cloud.acr`: a registry for the destination URI, with
 * this environment (and any other options).
 *
 * @example
 * const registry = selectRegistry(destination, { cloud: { acr: acrRegistryFactory(azure) } });
 */
export function acrRegistryFactory(environment: AzureEnvironment, extra: Omit<AcrRegistryOptions, 'uri' | 'environment'> = {}): (uri: string) => AcrRegistry {
  return (uri: string) => createAcrRegistry({ ...extra, uri, environment });
}
