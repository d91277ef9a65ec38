import { z } from 'zod';
import { LaunchError, LaunchValidationError, type CallContext, type Registry, type RegistryCredentials } from '@launch/core';
import { describeValue } from '@launch/core/internal';
import { parseWith, type GcpEnvironment } from './environment.js';
import { cancelledError, redactGcpText } from './errors.js';
import { isGcpEnvironment } from './gcs-context-store.js';
import { garRepository, parseGarUri, type GarRepository } from './gar-uri.js';

/** The username Artifact Registry takes with an OAuth2 access token as the password. */
export const GAR_USERNAME = 'oauth2accesstoken';

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const optionsSchema = z
  .object({
    uri: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    project: z.string().min(1).optional(),
    repository: z.string().min(1).optional(),
    imageName: z.string().min(1).optional(),
    environment: z.custom<GcpEnvironment>(isGcpEnvironment, 'a GcpEnvironment from createGcpEnvironment()'),
    endpoint: z.url().optional(),
    timeoutMs: z.number().int().min(100).optional(),
  })
  .strict();

/** Options of {@link createGarRegistry}: `uri`, or `region` + `repository` + `imageName` (+ `project`, default the environment's). */
export interface GarRegistryOptions {
  /** `[https://]<region>-docker.pkg.dev/<project>/<repository>/<image>` (`builder.destination`, the docs' `builder.uri`, `registry.uri`). */
  uri?: string;
  region?: string;
  /** Default the environment's project. */
  project?: string;
  repository?: string;
  imageName?: string;
  /** Credentials (the access token) and the default project. */
  environment: GcpEnvironment;
  /** Where the Docker registry API is reached, e.g. `http://127.0.0.1:5000` for a test server; default `https://<host>`. */
  endpoint?: string;
  /** Timeout of one manifest request. Default 30 s. */
  timeoutMs?: number;
}

/** The Artifact Registry registry: the `Registry` contract plus the repository's parts. */
export interface GarRegistry extends Registry {
  readonly name: 'gar';
  readonly region: string;
  readonly project: string;
  readonly repository: string;
  readonly image: string;
  /** `<region>-docker.pkg.dev` */
  readonly host: string;
  /** Username `oauth2accesstoken` and the environment's access token (never null). */
  credentials(ctx: CallContext): Promise<RegistryCredentials>;
}

const isTimeout = (error: unknown) => (error as { name?: unknown } | null)?.name === 'TimeoutError';

/** The tag or digest of `imageUri` within `repo` (`<uri>[:tag|@digest]`). */
function referenceOf(imageUri: string, repo: GarRepository): string {
  const stripped = typeof imageUri === 'string' ? imageUri.replace(/^https:\/\//, '') : '';
  if (!stripped.startsWith(repo.uri)) {
    throw new LaunchError({
      code: 'registry.wrong_registry',
      stage: 'build',
      message: `image ${describeValue(imageUri, 200)} is not in the Artifact Registry repository ${repo.uri}`,
      hint: `check images against the registry they are pushed to (${repo.uri}:<tag>)`,
    });
  }
  const rest = stripped.slice(repo.uri.length);
  if (rest === '') return 'latest';
  const digest = /^@(sha256:[a-f0-9]{64})$/.exec(rest);
  if (digest) return digest[1]!;
  const tag = /^:(\w[\w.-]{0,127})$/.exec(rest);
  if (tag) return tag[1]!;
  if (/^[/\w.-]/.test(rest)) {
    throw new LaunchError({
      code: 'registry.wrong_registry',
      stage: 'build',
      message: `image ${describeValue(imageUri, 200)} is not in the Artifact Registry repository ${repo.uri}`,
      hint: `check images against the registry they are pushed to (${repo.uri}:<tag>)`,
    });
  }
  throw new LaunchError({
    code: 'registry.invalid_reference',
    stage: 'build',
    category: 'InvalidSpec',
    message: `image ${describeValue(imageUri, 200)} has an invalid tag or digest ${describeValue(rest)}`,
    hint: 'tags are up to 128 of letters, digits, _ . -; digests are @sha256:<64 hex>',
  });
}

/**
 * The Google Artifact Registry registry (`<region>-docker.pkg.dev/<project>/<repository>/<image>`), by
 * W&B's URI rule.
 *
 * - `credentials()`: username `oauth2accesstoken` and the environment's OAuth2 access token as the
 *   password (what `docker login` and kaniko's docker config take), cached until shortly before it expires.
 * - `imageExists()`: `HEAD /v2/<project>/<repository>/<image>/manifests/<tag|digest>` with
 *   `Authorization: Bearer <access token>` (W&B lists the repository's images through the Artifact
 *   Registry API instead): 200 → true, 404 `MANIFEST_UNKNOWN` → false, `NAME_UNKNOWN` → a LaunchError
 *   naming the repository, 401/403 → `RegistryAuth` naming the permission.
 * - `needsPullSecret` is true: W&B gives Kubernetes jobs an `imagePullSecrets` for every registry other
 *   than the local one and ACR.
 *
 * @example
 * const registry = createGarRegistry({ uri: 'us-central1-docker.pkg.dev/my-project/launch/images', environment: gcp });
 * await registry.imageExists('us-central1-docker.pkg.dev/my-project/launch/images:3f2a9c1e', { logger });
 */
export function createGarRegistry(options: GarRegistryOptions): GarRegistry {
  const opts = parseWith(optionsSchema, options, 'Artifact Registry options', Object.keys(optionsSchema.shape));
  let repo: GarRepository;
  if (opts.uri) {
    if ([opts.region, opts.project, opts.repository, opts.imageName].some((p) => p !== undefined)) {
      throw new LaunchValidationError({
        code: 'registry.invalid_uri',
        stage: 'agent',
        subject: 'Artifact Registry options',
        issues: [
          {
            path: 'uri',
            expected: 'uri, or region + repository + imageName (+ project)',
            found: 'both',
            message: 'give either uri or region, repository, imageName and project, not both',
          },
        ],
      });
    }
    repo = parseGarUri(opts.uri);
  } else {
    const project = opts.project ?? opts.environment.project;
    const missing = (['region', 'repository', 'imageName'] as const).filter((k) => opts[k] === undefined);
    if (!project) missing.push('project' as never);
    if (missing.length) {
      throw new LaunchValidationError({
        code: 'registry.invalid_uri',
        stage: 'agent',
        subject: 'Artifact Registry options',
        issues: missing.map((k) => ({
          path: k,
          expected: 'a string',
          found: 'nothing',
          message: "missing: give uri, or all of region, repository, imageName and project (default the environment's)",
        })),
      });
    }
    repo = garRepository({ region: opts.region!, project: project!, repository: opts.repository!, image: opts.imageName! }, 'repository');
  }
  const environment = opts.environment;
  const base = (opts.endpoint ?? `https://${repo.host}`).replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const resource = `projects/${repo.project}/locations/${repo.region}/repositories/${repo.repository}`;

  const authError = (status: number, body: string): LaunchError =>
    new LaunchError({
      code: 'registry.auth',
      stage: 'build',
      category: 'RegistryAuth',
      retryable: false,
      message: `Artifact Registry ${repo.host} refused the access token for ${repo.uri} (HTTP ${status}${/DENIED|UNAUTHORIZED/.exec(body)?.[0] ? ` ${/DENIED|UNAUTHORIZED/.exec(body)![0]}` : ''})`,
      hint:
        status === 403
          ? `grant the agent's service account artifactregistry.repositories.downloadArtifacts (roles/artifactregistry.reader) and, to push, artifactregistry.repositories.uploadArtifacts (roles/artifactregistry.writer) on ${resource}`
          : 'the access token was not accepted: check the credentials the agent uses (GOOGLE_APPLICATION_CREDENTIALS, workload identity) and that the token has the cloud-platform scope',
    });

  const registry: GarRegistry = {
    specificationVersion: 'v1',
    name: 'gar',
    uri: repo.uri,
    region: repo.region,
    project: repo.project,
    repository: repo.repository,
    image: repo.image,
    host: repo.host,
    needsPullSecret: true,

    async credentials(ctx: CallContext): Promise<RegistryCredentials> {
      const { token } = await environment.accessToken(ctx);
      return { username: GAR_USERNAME, password: token };
    },

    async imageExists(imageUri: string, ctx: CallContext): Promise<boolean> {
      const reference = referenceOf(imageUri, repo);
      const { token } = await environment.accessToken(ctx);
      const url = `${base}/v2/${repo.project}/${repo.repository}/${repo.image}/manifests/${encodeURIComponent(reference)}`;
      const signals = [AbortSignal.timeout(timeoutMs), ...(ctx.signal ? [ctx.signal] : [])];
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'HEAD',
          headers: { authorization: `Bearer ${token}`, accept: MANIFEST_ACCEPT },
          signal: AbortSignal.any(signals),
          redirect: 'manual',
        });
      } catch (error) {
        if (ctx.signal?.aborted) throw cancelledError('registry.cancelled', `Artifact Registry manifest check for ${repo.uri}`, 'build');
        const code = (error as { cause?: { code?: unknown } }).cause?.code;
        throw new LaunchError({
          code: 'registry.unavailable',
          stage: 'build',
          retryable: true,
          message: `Artifact Registry ${repo.host} did not answer a manifest check for ${repo.uri} (${typeof code === 'string' ? code : isTimeout(error) ? `no answer in ${timeoutMs} ms` : (error as Error).name})`,
          hint: `check the network path to ${repo.host}${opts.endpoint ? ` (endpoint ${opts.endpoint})` : ''}`,
        });
      }
      if (response.status === 200) return true;
      // HEAD answers carry no body: ask again with GET to tell a missing tag from a missing repository.
      if (response.status === 404) {
        const again = await fetch(url, {
          method: 'GET',
          headers: { authorization: `Bearer ${token}`, accept: MANIFEST_ACCEPT },
          signal: AbortSignal.any(signals),
        }).catch(() => undefined);
        const body = again ? redactGcpText(await again.text().catch(() => '')).slice(0, 500) : '';
        if (again?.status === 200) return true;
        if (/NAME_UNKNOWN/.test(body)) {
          throw new LaunchError({
            code: 'registry.repository_not_found',
            stage: 'build',
            category: 'RegistryAuth',
            message: `Artifact Registry repository "${repo.repository}" does not exist in project ${repo.project}, location ${repo.region}`,
            hint: `create it (gcloud artifacts repositories create ${repo.repository} --repository-format=docker --location=${repo.region} --project=${repo.project}), or fix the destination`,
          });
        }
        return false;
      }
      if (response.status === 401 || response.status === 403) {
        const body =
          response.status === 403
            ? await fetch(url, { method: 'GET', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.any(signals) })
                .then((r) => r.text())
                .catch(() => '')
            : '';
        throw authError(response.status, body || (response.status === 401 ? 'UNAUTHORIZED' : 'DENIED'));
      }
      throw new LaunchError({
        code: 'registry.protocol',
        stage: 'build',
        retryable: response.status >= 500 || response.status === 429,
        message: `Artifact Registry ${repo.host} answered HTTP ${response.status} to a manifest check for ${repo.uri}`,
        hint: response.status >= 500 ? 'the registry failed: retry later' : "see the registry's answer",
      });
    },
  };
  return registry;
}

/**
 * The factory `selectRegistry` takes as `options.cloud.gar`: `(uri) => Registry`.
 *
 * @example
 * const registry = selectRegistry(destination, { cloud: { gar: garRegistryFactory(gcp) } });
 */
export function garRegistryFactory(environment: GcpEnvironment, extra: Pick<GarRegistryOptions, 'endpoint' | 'timeoutMs'> = {}): (uri: string) => GarRegistry {
  return (uri: string) => createGarRegistry({ ...extra, uri, environment });
}
