import { z } from 'zod';
import { LaunchError, LaunchValidationError, type CallContext, type Registry, type RegistryCredentials } from '@launch/core';
import { closest, describeValue, zodIssues } from '@launch/core/internal';
import { parseWwwAuthenticate, type AuthChallenge } from './challenge.js';
import { configKeyHost, credentialsFromDockerConfig, credentialSource, readDockerConfig, type DockerConfig } from './docker-config.js';
import { registryAuthError, registryProtocolError, registryUnavailableError } from './errors.js';
import { formatImageReference, isLoopbackHost, parseImageReference, registryHostOnly, type ImageReference } from './reference.js';

/** Manifest media types a HEAD asks for: OCI index and manifest, Docker v2 manifest and manifest list. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const MAX_TOKEN_BODY = 1 << 20;

const optionsSchema = z
  .object({
    uri: z.string().min(1),
    credentials: z
      .object({ username: z.string().min(1), password: z.string().min(1) })
      .strict()
      .optional(),
    dockerConfigPath: z.string().min(1).optional(),
    useDockerConfig: z.boolean().optional(),
    insecure: z.boolean().optional(),
    timeoutMs: z.number().int().positive().optional(),
    env: z.record(z.string(), z.string().optional()).optional(),
    fetch: z.custom<typeof fetch>((v) => typeof v === 'function', 'a fetch function').optional(),
    now: z.custom<() => number>((v) => typeof v === 'function', 'a function returning milliseconds').optional(),
  })
  .strict();

/** Options of {@link createOciRegistry}. */
export interface OciRegistryOptions {
  /**
   * Repository images are pushed to: `host[:port]/path`, e.g. `127.0.0.1:5000/launch` or
   * `ghcr.io/acme/launch`; an `https://` prefix is allowed, `http://` only for a loopback host or with
   * `insecure`. No tag or digest.
   */
  uri: string;
  /** Credentials to use; when absent they come from the Docker config. The password is never logged. */
  credentials?: RegistryCredentials;
  /** Docker CLI config file; default `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
  dockerConfigPath?: string;
  /** Read credentials from the Docker config when `credentials` is absent. Default true. */
  useDockerConfig?: boolean;
  /** Talk plain HTTP to a registry (and token realm) that is not on a loopback address. Default false. */
  insecure?: boolean;
  /** Deadline of one HTTP request, in ms. Default 30 000. */
  timeoutMs?: number;
  /** Environment for `DOCKER_CONFIG`, `HOME` and the `PATH` credential helpers are found on. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** The fetch to use (default the global one, undici); lets a caller observe requests. */
  fetch?: typeof fetch;
  /** Clock for token expiry, in ms. Default `Date.now`. */
  now?: () => number;
}

/** A generic OCI Distribution v2 registry: the `Registry` contract plus where it is. */
export interface OciRegistry extends Registry {
  readonly name: 'oci';
  /** `host[:port]` (`docker.io` for Docker Hub). */
  readonly registry: string;
  /** Repository path, e.g. `launch` or `acme/launch`. */
  readonly repository: string;
  /** Where the API is: `https://ghcr.io`, `http://127.0.0.1:5000`. */
  readonly baseUrl: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

type Auth = { kind: 'basic' } | { kind: 'bearer'; realm: string; service?: string };

function parseOptions(input: unknown): z.output<typeof optionsSchema> {
  const result = optionsSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = zodIssues(result.error, input, (key) => closest(key, Object.keys(optionsSchema.shape))).map((issue) =>
    // Never echo what was given for credentials: it may be the secret itself.
    issue.path.startsWith('credentials') ? { ...issue, found: '(hidden)', message: `expected ${issue.expected} (value hidden)` } : issue,
  );
  throw new LaunchValidationError({ code: 'registry.invalid_options', stage: 'agent', subject: 'OCI registry options', issues });
}

function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  if (cause && typeof cause === 'object') return cause.code ? `${cause.code}${cause.message ? ` (${cause.message})` : ''}` : (cause.message ?? error.message);
  return error.name === 'TimeoutError' ? 'timed out' : error.message;
}

/**
 * A registry speaking the OCI Distribution v2 API (Distribution, Harbor, GHCR, GitLab, CoreWeave, …).
 * `imageExists` sends `HEAD /v2/<repo>/manifests/<tag or digest>` and answers the registry's
 * `WWW-Authenticate` challenge: Basic with the credentials, or Bearer by fetching a token from the
 * realm (with the credentials when there are any, anonymously otherwise) and caching it until its
 * `expires_in` runs out. Credentials come from `options.credentials`, else from the Docker config
 * (`credHelpers`, `credsStore`, `auths`), as the Docker CLI finds them.
 *
 * Answers: 2xx → true; 404 → false; 401/403 → LaunchError category `RegistryAuth` naming the registry
 * (never the password); 429, 5xx and network failures → a retryable LaunchError naming the host.
 *
 * @example
 * const registry = createOciRegistry({ uri: '127.0.0.1:5000/launch' });
 * await registry.imageExists('127.0.0.1:5000/launch:3f2a9c1e', { logger });
 */
export function createOciRegistry(options: OciRegistryOptions): OciRegistry {
  const opts = parseOptions(options);
  const hostOnly = registryHostOnly(opts.uri);
  const ref = hostOnly ? undefined : parseImageReference(opts.uri);
  if (!ref || ref.tag !== undefined || ref.digest !== undefined) {
    throw new LaunchValidationError({
      code: 'registry.invalid_options',
      stage: 'agent',
      subject: 'OCI registry options',
      issues: [
        {
          path: 'uri',
          expected: 'host[:port]/repository without a tag or digest',
          found: describeValue(opts.uri),
          message: hostOnly
            ? `names only a registry host (${hostOnly}) and no repository: expected host[:port]/repository, e.g. ${hostOnly}/launch`
            : `expected host[:port]/repository without a tag or digest, found ${describeValue(opts.uri)}`,
        },
      ],
    });
  }
  if (opts.dockerConfigPath && (opts.credentials || opts.useDockerConfig === false)) {
    const why = opts.credentials ? 'credentials are given' : 'useDockerConfig is false';
    throw new LaunchValidationError({
      code: 'registry.invalid_options',
      stage: 'agent',
      subject: 'OCI registry options',
      issues: [
        {
          path: 'dockerConfigPath',
          expected: 'no Docker config path',
          found: describeValue(opts.dockerConfigPath),
          message: `the file would be ignored because ${why}`,
        },
      ],
    });
  }
  const insecure = opts.insecure ?? false;
  const loopback = isLoopbackHost(ref.host);
  if (ref.scheme === 'http' && !loopback && !insecure) {
    throw new LaunchValidationError({
      code: 'registry.invalid_options',
      stage: 'agent',
      subject: 'OCI registry options',
      issues: [
        {
          path: 'uri',
          expected: 'https:// for a registry that is not on a loopback address (or insecure: true)',
          found: describeValue(opts.uri),
          message: `plain http:// to ${ref.host} is refused unless insecure is true`,
        },
      ],
    });
  }
  const scheme = ref.scheme ?? (loopback || insecure ? 'http' : 'https');
  const apiHost = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
  const baseUrl = `${scheme}://${apiHost}`;
  const registry = ref.registry;
  const env = opts.env ?? process.env;
  const doFetch = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const useDockerConfig = !opts.credentials && (opts.useDockerConfig ?? true);
  let dockerConfig: DockerConfig | undefined;
  if (useDockerConfig) {
    dockerConfig = readDockerConfig({ ...(opts.dockerConfigPath ? { path: opts.dockerConfigPath } : {}), env });
    if (opts.dockerConfigPath && !dockerConfig.found) {
      throw new LaunchValidationError({
        code: 'registry.invalid_options',
        stage: 'agent',
        subject: 'OCI registry options',
        issues: [
          {
            path: 'dockerConfigPath',
            expected: 'an existing Docker config file',
            found: describeValue(opts.dockerConfigPath),
            message: `no file at ${JSON.stringify(opts.dockerConfigPath)}`,
          },
        ],
      });
    }
  }
  const source = dockerConfig ? credentialSource(dockerConfig, registry) : undefined;
  const needsPullSecret = ((): boolean => {
    if (opts.credentials) return true;
    if (!dockerConfig || !source) return false;
    if (source.kind === 'auths') return !!(source.entry.auth || (source.entry.username && source.entry.password));
    if (source.via === 'credHelpers') return true;
    // With a credsStore, `docker login` lists the registry in `auths` (without a secret) when the store holds it.
    return Object.keys(dockerConfig.auths).some((key) => configKeyHost(key) === configKeyHost(registry));
  })();

  let credentialsPromise: Promise<RegistryCredentials | null> | undefined;
  const credentials = (ctx?: CallContext): Promise<RegistryCredentials | null> => {
    if (opts.credentials) return Promise.resolve({ ...opts.credentials });
    if (!dockerConfig) return Promise.resolve(null);
    credentialsPromise ??= credentialsFromDockerConfig(dockerConfig, registry, { env, ...(ctx?.signal ? { signal: ctx.signal } : {}) }).catch(
      (error: unknown) => {
        credentialsPromise = undefined;
        throw error;
      },
    );
    return credentialsPromise.then((c) => (c ? { ...c } : null));
  };
  const whereCredentials = () =>
    opts.credentials
      ? 'the registry options'
      : dockerConfig
        ? `the Docker config ${dockerConfig.path}${source ? '' : ` (no entry for ${registry})`}`
        : 'nowhere (useDockerConfig is false)';

  let knownAuth: Auth | undefined;
  const tokens = new Map<string, Promise<CachedToken>>();

  async function send(url: string, init: RequestInit, ctx: CallContext, what: string): Promise<Response> {
    const signals = [AbortSignal.timeout(timeoutMs), ...(ctx.signal ? [ctx.signal] : [])];
    try {
      return await doFetch(url, { ...init, redirect: 'follow', signal: AbortSignal.any(signals) });
    } catch (error) {
      if (ctx.signal?.aborted) {
        throw new LaunchError({ code: 'registry.cancelled', stage: 'build', message: `${what} on ${registry} was cancelled`, cause: error });
      }
      const host = new URL(url).host;
      throw registryUnavailableError(
        `registry ${registry} did not answer ${what}: ${host} ${describeCause(error)}`,
        `check that ${host} is reachable from here${scheme === 'https' ? ' over HTTPS' : ''}`,
        error,
      );
    }
  }

  function basicHeader(c: RegistryCredentials): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  async function readToken(res: Response, realm: string): Promise<CachedToken> {
    const host = new URL(realm).host;
    const reader = res.body?.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (reader) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > MAX_TOKEN_BODY) {
          await reader.cancel();
          throw registryProtocolError(
            `token server ${host} for ${registry} sent more than ${MAX_TOKEN_BODY} bytes`,
            "check the realm in the registry's WWW-Authenticate header",
          );
        }
        chunks.push(value);
      }
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw registryProtocolError(
        `token server ${host} for ${registry} answered with something that is not JSON`,
        "check the realm in the registry's WWW-Authenticate header",
      );
    }
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const token = typeof b.token === 'string' && b.token ? b.token : typeof b.access_token === 'string' && b.access_token ? b.access_token : undefined;
    if (!token)
      throw registryProtocolError(
        `token server ${host} for ${registry} answered without a "token" or "access_token" string`,
        "check the realm in the registry's WWW-Authenticate header",
      );
    // The token specification's default lifetime is 60 s.
    const expiresIn = typeof b.expires_in === 'number' && Number.isFinite(b.expires_in) && b.expires_in > 0 ? b.expires_in : 60;
    // Renew a little early so that a token does not expire on its way to the registry.
    const margin = Math.min(10_000, expiresIn * 100);
    return { token, expiresAt: now() + expiresIn * 1000 - margin };
  }

  async function fetchToken(auth: Extract<Auth, { kind: 'bearer' }>, scope: string, ctx: CallContext): Promise<CachedToken> {
    const realmUrl = new URL(auth.realm);
    if (realmUrl.protocol === 'http:' && !isLoopbackHost(realmUrl.hostname) && !insecure) {
      throw registryAuthError(
        `registry ${registry} sends clients to a plain-HTTP token realm ${realmUrl.host}; refusing to send credentials there`,
        'serve the token realm over HTTPS, or set insecure: true if this network is trusted',
      );
    }
    if (auth.service) realmUrl.searchParams.set('service', auth.service);
    if (scope) realmUrl.searchParams.append('scope', scope);
    const creds = await credentials(ctx);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basicHeader(creds);
    ctx.logger.debug({ registry, realm: `${realmUrl.origin}${realmUrl.pathname}`, scope, anonymous: !creds }, 'fetching a registry token');
    const res = await send(realmUrl.toString(), { method: 'GET', headers }, ctx, 'a token request');
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw registryAuthError(
        creds
          ? `registry ${registry}: the token server ${realmUrl.host} refused the credentials of user ${JSON.stringify(creds.username)} (HTTP ${res.status})`
          : `registry ${registry}: the token server ${realmUrl.host} refused an anonymous token (HTTP ${res.status}) and no credentials were found in ${whereCredentials()}`,
        creds ? `check the password or token for ${registry} (docker login ${registry})` : `log in (docker login ${registry}) or pass credentials`,
      );
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel();
      throw registryUnavailableError(`registry ${registry}: the token server ${realmUrl.host} answered HTTP ${res.status}`, 'try again later');
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw registryProtocolError(
        `registry ${registry}: the token server ${realmUrl.host} answered HTTP ${res.status} to a token request for ${JSON.stringify(scope)}`,
        "check the registry's token realm and the requested scope",
      );
    }
    return readToken(res, realmUrl.toString());
  }

  const tokenKey = (auth: Extract<Auth, { kind: 'bearer' }>, scope: string) => `${auth.realm}\n${auth.service ?? ''}\n${scope}`;

  function bearerToken(auth: Extract<Auth, { kind: 'bearer' }>, scope: string, ctx: CallContext): Promise<CachedToken> {
    const key = tokenKey(auth, scope);
    const cached = tokens.get(key);
    if (cached) {
      return cached.then((t) => {
        if (t.expiresAt > now()) return t;
        if (tokens.get(key) === cached) tokens.delete(key);
        return bearerToken(auth, scope, ctx);
      });
    }
    const pending = fetchToken(auth, scope, ctx);
    tokens.set(key, pending);
    pending.catch(() => {
      if (tokens.get(key) === pending) tokens.delete(key);
    });
    return pending;
  }

  /** The Authorization header for a request to `repository`, from what the registry asked for before. */
  async function authorization(scope: string, ctx: CallContext): Promise<string | undefined> {
    if (!knownAuth) return undefined;
    if (knownAuth.kind === 'basic') {
      const creds = await credentials(ctx);
      return creds ? basicHeader(creds) : undefined;
    }
    return `Bearer ${(await bearerToken(knownAuth, scope, ctx)).token}`;
  }

  function learn(challenges: AuthChallenge[], defaultScope: string): { auth: Auth; scope: string } | undefined {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm || !/^https?:\/\//i.test(realm)) {
        throw registryProtocolError(
          `registry ${registry} asked for a Bearer token without an http(s) realm (found ${JSON.stringify(realm ?? null)})`,
          "the registry's auth.token.realm must be an http(s) URL",
        );
      }
      return {
        auth: { kind: 'bearer', realm, ...(bearer.params.service ? { service: bearer.params.service } : {}) },
        scope: bearer.params.scope ?? defaultScope,
      };
    }
    if (challenges.some((c) => c.scheme === 'basic')) return { auth: { kind: 'basic' }, scope: defaultScope };
    return undefined;
  }

  async function headManifest(target: ImageReference, ctx: CallContext): Promise<boolean> {
    const reference = target.digest ?? target.tag ?? 'latest';
    const path = `/v2/${target.repository}/manifests/${reference}`;
    const url = `${baseUrl}${path}`;
    const what = `HEAD ${path}`;
    const scope = `repository:${target.repository}:pull`;
    const headers = (auth: string | undefined): Record<string, string> => ({ accept: MANIFEST_ACCEPT, ...(auth ? { authorization: auth } : {}) });

    const sent = await authorization(scope, ctx);
    let res = await send(url, { method: 'HEAD', headers: headers(sent) }, ctx, what);
    let authTried = knownAuth !== undefined;
    if (res.status === 401) {
      const header = res.headers.get('www-authenticate');
      let challenges: AuthChallenge[] = [];
      try {
        challenges = header ? parseWwwAuthenticate(header) : [];
      } catch (error) {
        throw registryProtocolError(
          `registry ${registry} sent a WWW-Authenticate header that cannot be parsed: ${(error as Error).message}`,
          'the registry does not follow RFC 7235',
          error,
        );
      }
      const learned = learn(challenges, scope);
      if (!learned) {
        throw registryAuthError(
          `registry ${registry} answered 401 to ${what} without a Basic or Bearer challenge (found ${JSON.stringify(header ?? null)})`,
          'this registry needs an authentication scheme that is not supported',
        );
      }
      knownAuth = learned.auth;
      let auth: string | undefined;
      if (learned.auth.kind === 'basic') {
        const creds = await credentials(ctx);
        if (!creds) {
          throw registryAuthError(
            `registry ${registry} requires credentials for ${what} and none were found in ${whereCredentials()}`,
            `log in (docker login ${registry}) or pass credentials to the registry`,
          );
        }
        auth = basicHeader(creds);
      } else {
        // A cached token that was just refused is dropped; one that was not sent stays shared.
        const key = tokenKey(learned.auth, learned.scope);
        const cached = tokens.get(key);
        if (cached && sent === `Bearer ${(await cached.catch(() => undefined))?.token}` && tokens.get(key) === cached) tokens.delete(key);
        auth = `Bearer ${(await bearerToken(learned.auth, learned.scope, ctx)).token}`;
      }
      ctx.logger.debug({ registry, scheme: learned.auth.kind }, 'answering the registry challenge');
      res = await send(url, { method: 'HEAD', headers: headers(auth) }, ctx, what);
      authTried = true;
    }
    ctx.logger.debug({ registry, repository: target.repository, reference, status: res.status }, 'manifest HEAD');
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return true;
    if (res.status === 404) return false;
    if (res.status === 401 || res.status === 403) {
      const creds = authTried ? await credentials(ctx).catch(() => null) : null;
      // Credentials may have been rotated: read them again next time.
      credentialsPromise = undefined;
      const who = creds ? `user ${JSON.stringify(creds.username)}` : 'an anonymous client';
      let message: string;
      if (res.status === 403) message = `registry ${registry} denied ${who} access to ${target.repository} (HTTP 403)`;
      else if (creds) message = `registry ${registry} refused the credentials of ${who} for ${what} (HTTP 401)`;
      else message = `registry ${registry} refused anonymous access to ${what} (HTTP 401); no credentials were found in ${whereCredentials()}`;
      throw registryAuthError(
        message,
        res.status === 403
          ? `grant ${creds ? creds.username : 'the client'} pull access to ${target.repository}`
          : creds
            ? `check the password or token for ${registry} (docker login ${registry})`
            : `log in (docker login ${registry}) or pass credentials to the registry`,
      );
    }
    if (res.status === 429 || res.status >= 500) {
      throw registryUnavailableError(`registry ${registry} answered HTTP ${res.status} to ${what}`, 'the registry is overloaded or failing; try again later');
    }
    throw registryProtocolError(`registry ${registry} answered HTTP ${res.status} to ${what}`, `check that ${baseUrl} is an OCI Distribution v2 registry`);
  }

  return {
    specificationVersion: 'v1',
    name: 'oci',
    uri: `${registry}/${ref.repository}`,
    registry,
    repository: ref.repository,
    baseUrl,
    needsPullSecret,
    credentials: (ctx: CallContext) => credentials(ctx),
    async imageExists(imageUri: string, ctx: CallContext): Promise<boolean> {
      const target = parseImageReference(imageUri);
      if (target.registry !== registry) {
        throw new LaunchError({
          code: 'registry.wrong_registry',
          stage: 'build',
          category: 'InvalidSpec',
          message: `image ${formatImageReference(target)} is in registry ${target.registry}, not in ${registry} (this registry's uri is ${registry}/${ref.repository})`,
          hint: `check builder.destination / registry.uri, or ask the registry of ${target.registry}`,
        });
      }
      return headManifest(target, ctx);
    },
  };
}
