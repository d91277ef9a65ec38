import type Dockerode from 'dockerode';
import {
  childLogger,
  LaunchError,
  toLaunchError,
  type BuildRequest,
  type BuildResult,
  type Builder,
  type CallContext,
  type Logger,
  type Registry,
} from '@launch/core';
import { specImage } from '@launch/core/internal';
import { abortedError, contextError, throwIfAborted } from '../context/errors.js';
import { hashContext, packContext } from '../context/pack.js';
import { resolveBuildContext, type BuildContextInput, type BuildContextPlan, type DockerfileSource } from '../context/resolve.js';
import { contentTag, dockerSafeName, splitImageUri, validateRepository, wandbJobSourceString, wandbTag } from '../context/tag.js';
import {
  contextCompression,
  describeAddress,
  engineAddress,
  parseDockerBuilderOptions,
  type DockerBuilderOptions,
  type ResolvedDockerBuilderOptions,
} from './options.js';
import { followProgress, type ProgressFollower } from './progress.js';

/**
 * Facts about the job's code that W&B reads from the job artifact (`wandb-job.json`): its
 * `build_context`, `dockerfile`, entry point and Python runtime. Read from `request.job` when the
 * queue source supplies it.
 */
export interface BuildJobSource {
  buildContext?: string;
  dockerfile?: string;
  entryPoint?: string[];
  /** Python version the job was made with (`3.11.4`). */
  runtime?: string;
}

/** What the docker builder reports besides the image. */
export interface DockerBuildResult extends BuildResult {
  /** The source-hash tag. */
  tag: string;
  /**
   * `content` (our hash of Dockerfile + packed context), `wandb` (W&B's form, for jobs pinned to an
   * artifact version), or `none` for a job that names its image (nothing built).
   */
  tagScheme: 'content' | 'wandb' | 'none';
  /** Which rule chose the Dockerfile (absent when nothing was built). */
  dockerfileSource?: DockerfileSource;
  /** sha256 of the packed context (uncompressed tar), when it was hashed. */
  contextDigest?: string;
  /** The command to run, rewritten when the context moved to the entry point's directory. */
  entryPoint?: string[];
}

/** The docker builder: a {@link Builder} whose results say how the image was named and made. */
export interface DockerBuilder extends Builder {
  build(request: BuildRequest, ctx: CallContext): Promise<DockerBuildResult>;
}

type DockerClient = Dockerode;

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

function engineMessage(error: unknown): string {
  const json = (error as { json?: unknown }).json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') return (json as { message: string }).message;
  if (typeof json === 'string' && json.trim()) return json.trim();
  return errno(error) ?? (error as Error).message ?? String(error);
}

function readStream(stream: NodeJS.ReadableStream, follower: ProgressFollower, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const readable = stream as NodeJS.ReadableStream & { destroy?: (error?: Error) => void };
    const onAbort = () => readable.destroy?.(abortedError('the build'));
    signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const done = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      follower.end();
      if (error) reject(error);
      else resolve();
    };
    stream.on('data', (chunk: Buffer | string) => follower.write(chunk));
    stream.on('end', () => done());
    stream.on('error', (error: unknown) => done(error));
    // Closed without an end: the engine went away mid-stream, which is never a success.
    stream.on('close', () =>
      done(
        signal?.aborted ? abortedError('the build') : Object.assign(new Error('the engine closed the progress stream before its end'), { code: 'ECONNRESET' }),
      ),
    );
  });
}

/** The spec's `resource_args.<resource>.builder` block (W&B pops it out before the runner sees the args). */
function resourceBuilderArgs(request: BuildRequest, resource: string): Record<string, unknown> | undefined {
  const args = request.spec.resource_args?.[resource];
  if (!args || typeof args !== 'object') return undefined;
  const builder = (args as Record<string, unknown>).builder;
  return builder && typeof builder === 'object' ? (builder as Record<string, unknown>) : undefined;
}

function acceleratorImage(request: BuildRequest, resource: string): string | undefined {
  const builder = resourceBuilderArgs(request, resource);
  if (!builder) return undefined;
  for (const key of ['accelerator', 'cuda'] as const) {
    const block = builder[key];
    if (block === undefined || block === null) continue;
    const image = typeof block === 'object' ? (block as Record<string, unknown>).base_image : undefined;
    if (image === undefined || image === null) continue;
    if (typeof image !== 'string') {
      throw contextError({
        code: 'invalid_base_image',
        message: `resource_args.${resource}.builder.${key}.base_image must be a string, found ${typeof image}`,
      });
    }
    return image;
  }
  return undefined;
}

function userId(request: BuildRequest): number {
  const raw = request.spec.docker?.user_id;
  if (raw === undefined || raw === null) return 1000; // W&B's default
  const value = typeof raw === 'number' ? raw : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw contextError({
      code: 'invalid_user_id',
      message: `docker.user_id must be a user id (a whole number from 0), found ${JSON.stringify(raw)}`,
      hint: 'set docker.user_id to the numeric uid the job should run as (W&B defaults to 1000)',
    });
  }
  return value;
}

/** The build context input W&B's context manager would use for this request. */
export function contextInputFromRequest(
  request: BuildRequest,
  options: Pick<ResolvedDockerBuilderOptions, 'pythonVersion' | 'dockerUser' | 'maxContextEntries'>,
): BuildContextInput {
  const job = (request as BuildRequest & { job?: BuildJobSource }).job;
  const spec = request.spec;
  const resource = spec.resource ?? 'local-container';
  return {
    dir: request.contextDir!,
    buildContext: job?.buildContext,
    overrideDockerfile: spec.overrides?.dockerfile ?? undefined,
    jobDockerfile: job?.dockerfile,
    jobEntryPoint: job?.entryPoint,
    overrideEntryPoint: spec.overrides?.entry_point?.length ? spec.overrides.entry_point : undefined,
    pythonVersion: spec.python_version ?? job?.runtime ?? undefined,
    defaultPythonVersion: options.pythonVersion,
    acceleratorBaseImage: acceleratorImage(request, resource),
    user: { name: options.dockerUser, uid: userId(request) },
    resource,
    cacheMount: false, // the engine API's classic builder has no BuildKit cache mounts
    maxEntries: options.maxContextEntries,
  };
}

/**
 * Builds job images with a Docker engine through its API (dockerode, loaded on first use), as W&B's
 * `DockerBuilder` does with the `docker` CLI:
 *
 * - the build context follows W&B's precedence ({@link resolveBuildContext}) and is streamed to the
 *   engine as a deterministic tar (gzipped to a `tcp://` engine), never copied or held in memory;
 * - the image is `<repository>:<source-hash tag>`, the repository being `destination`, else the
 *   registry's `uri`, else a name made from the job's;
 * - the build is **skipped** when the registry already has that tag (`cached: true`), or, with no
 *   registry, when the engine already has it;
 * - build output goes line by line to `request.onProgress`; the image is pushed with the registry's
 *   credentials (`X-Registry-Auth`);
 * - failures are LaunchErrors at stage `build`: `BuildFailed` with the last lines of output and a
 *   hint (naming the packages pip could not find), `RegistryAuth` when a push is refused.
 *
 * `ctx.signal` cancels hashing, the build (the engine stops it when the request is aborted) and the push.
 *
 * @example
 * const builder = createDockerBuilder({ socketPath: '/var/run/docker.sock', destination: 'registry.example.com/ml/train' });
 * await builder.verify(ctx);
 * const { imageUri, cached } = await builder.build({ spec, runId, itemId, contextDir: '/tmp/job-code', registry }, ctx);
 */
export function createDockerBuilder(options: DockerBuilderOptions = {}): DockerBuilder {
  const config = parseDockerBuilderOptions(options);
  const address = engineAddress(config);
  const where = describeAddress(address);
  const gzipLevel = contextCompression(config.gzipLevel, address);
  let client: Promise<DockerClient> | undefined;

  function docker(): Promise<DockerClient> {
    client ??= import('dockerode').then((mod) => {
      const Docker = ((mod as { default?: unknown }).default ?? mod) as typeof Dockerode;
      return new Docker(address);
    });
    return client;
  }

  function engineError(error: unknown, doing: string, stage: 'agent' | 'build'): LaunchError {
    if (LaunchError.isInstance(error)) return error;
    const code = errno(error);
    if (code && UNREACHABLE.has(code)) {
      return new LaunchError({
        code: stage === 'agent' ? 'builder.engine_unreachable' : 'build.engine_unreachable',
        stage,
        category: stage === 'build' ? 'BuildFailed' : undefined,
        retryable: true,
        message: `cannot reach the Docker engine at ${where} while ${doing}: ${code}`,
        hint: 'start dockerd, or point the builder at the engine (the socketPath / dockerHost option, or DOCKER_HOST)',
        cause: error,
      });
    }
    return new LaunchError({
      code: stage === 'agent' ? 'builder.engine_error' : 'build.engine_error',
      stage,
      category: 'BuildFailed',
      retryable: true,
      message: `the Docker engine at ${where} failed while ${doing}: ${engineMessage(error)}`,
      cause: error,
    });
  }

  async function engineHasImage(imageUri: string, signal: AbortSignal | undefined): Promise<boolean> {
    const engine = await docker();
    try {
      await engine.getImage(imageUri).inspect({ abortSignal: signal } as object);
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return false;
      if (signal?.aborted) throw abortedError('checking for an existing image');
      throw engineError(error, `looking for image ${imageUri}`, 'build');
    }
  }

  async function push(imageUri: string, registry: Registry | undefined, ctx: CallContext, onLine: (line: string) => void): Promise<void> {
    const { repository, tag } = splitImageUri(imageUri);
    const credentials = registry ? await registry.credentials(ctx) : null;
    const host = repository.includes('/') ? repository.slice(0, repository.indexOf('/')) : 'docker.io';
    // The engine wants X-Registry-Auth even for an open registry.
    const authconfig = credentials ? { username: credentials.username, password: credentials.password, serveraddress: host } : { serveraddress: host };
    const engine = await docker();
    const follower = followProgress({ tailLines: config.tailLines, onLine });
    try {
      const stream = (await engine.getImage(repository).push({ tag, authconfig, abortSignal: ctx.signal } as object)) as NodeJS.ReadableStream;
      await readStream(stream, follower, ctx.signal);
    } catch (error) {
      if (ctx.signal?.aborted) throw abortedError(`pushing ${imageUri}`, error);
      throw engineError(error, `pushing ${imageUri}`, 'build');
    }
    if (follower.error) {
      const denied = /unauthorized|authentication required|denied|forbidden|\b401\b|\b403\b|no basic auth credentials/i.test(follower.error);
      throw new LaunchError({
        code: denied ? 'build.push_denied' : 'build.push_failed',
        stage: 'build',
        category: denied ? 'RegistryAuth' : 'BuildFailed',
        retryable: !denied,
        message: `pushing ${imageUri} to ${host} failed: ${follower.error}`,
        hint: denied
          ? `the registry ${host} refused the push: check the credentials the agent has for it${credentials ? '' : ' (none were given)'} and that they may push to ${repository}`
          : `the registry ${host} did not accept the image; the item can be retried`,
      });
    }
  }

  async function build(request: BuildRequest, ctx: CallContext): Promise<DockerBuildResult> {
    const logger: Logger = childLogger(ctx.logger ?? config.logger, { builder: 'docker', runId: request.runId });
    const signal = ctx.signal;
    const onLine = (line: string) => request.onProgress?.(line);
    throwIfAborted(signal, 'the build');

    const named = specImage(request.spec);
    if (named) {
      return { imageUri: named, cached: true, tag: splitImageUri(named).tag ?? 'latest', tagScheme: 'none' };
    }
    if (!request.contextDir) {
      throw contextError({
        code: 'no_context',
        message: `job ${request.spec.job ?? request.runId} needs an image built, but its code was not provided (no build context directory)`,
        hint: 'give the job an image (`docker.docker_image`), or let the queue source download its code',
      });
    }

    const plan: BuildContextPlan = await resolveBuildContext(contextInputFromRequest(request, config));
    for (const warning of plan.warnings) {
      logger.warn({ warning }, `build context: ${warning}`);
      onLine(`warning: ${warning}`);
    }
    const onSkip = (path: string, kind: string) => logger.warn({ path, kind }, `build context: ${kind} ${path} is not archived`);

    const registry = request.registry ?? config.registry;
    const [repository, field] = config.destination
      ? [config.destination, 'builder.destination']
      : registry?.uri
        ? [registry.uri.replace(/^https?:\/\//, '').replace(/\/+$/, ''), `the ${registry.name} registry uri`]
        : [dockerSafeName((request.spec.job ?? request.spec.name ?? 'launch-job').split(':')[0]!), 'the image name made from the job name'];
    validateRepository(repository, field);

    const wandbSource = wandbJobSourceString(request.spec.job);
    let tag: string;
    let contextDigest: string | undefined;
    let contextCheck: string | undefined;
    if (wandbSource) {
      tag = wandbTag(wandbSource, plan.dockerfile);
    } else {
      const hashed = await hashContext(plan, { signal, onSkip });
      contextDigest = hashed.sha256;
      contextCheck = hashed.check;
      tag = contentTag({ dockerfile: plan.dockerfile, contextDigest, platform: config.platform, buildArgs: config.buildArgs });
    }
    const imageUri = `${repository}:${tag}`;
    const result = {
      imageUri,
      tag,
      tagScheme: wandbSource ? ('wandb' as const) : ('content' as const),
      dockerfileSource: plan.dockerfileSource,
      contextDigest,
      entryPoint: plan.entryPoint,
    };

    // Skip the build when the image is already there: in the registry, or (no registry) in the engine.
    if (registry) {
      let exists: boolean;
      try {
        exists = await registry.imageExists(imageUri, ctx);
      } catch (error) {
        throw toLaunchError(error, { code: 'build.registry_check', stage: 'build' });
      }
      if (exists) {
        logger.info({ imageUri }, 'image already in the registry: build skipped');
        onLine(`image ${imageUri} already exists in the registry: build skipped`);
        return { ...result, cached: true };
      }
    } else if (await engineHasImage(imageUri, signal)) {
      logger.info({ imageUri }, 'image already in the engine: build skipped');
      onLine(`image ${imageUri} already exists in the Docker engine: build skipped`);
      if (config.destination) await push(imageUri, undefined, ctx, onLine);
      return { ...result, cached: true };
    }

    throwIfAborted(signal, 'the build');
    const engine = await docker();
    // The sha256 is known from hashContext: this pass only checks (with the cheaper sha1) that it sends the same bytes.
    const packed = packContext(plan, { gzipLevel, sha256: false, signal, onSkip });
    const follower = followProgress({ tailLines: config.tailLines, onLine });
    logger.info({ imageUri, dockerfile: plan.dockerfileSource }, 'building image');
    try {
      let response: NodeJS.ReadableStream;
      try {
        response = (await engine.buildImage(
          packed.stream as unknown as NodeJS.ReadableStream,
          {
            t: imageUri,
            dockerfile: plan.dockerfilePath,
            ...(config.platform ? { platform: config.platform } : {}),
            buildargs: config.buildArgs,
            rm: true,
            forcerm: true,
            abortSignal: signal,
          } as Dockerode.ImageBuildOptions,
        )) as NodeJS.ReadableStream;
      } catch (error) {
        if (signal?.aborted) throw abortedError('the build', error);
        const status = (error as { statusCode?: number }).statusCode;
        if (status && status < 500 && status !== 404) {
          throw new LaunchError({
            code: 'build.failed',
            stage: 'build',
            category: 'BuildFailed',
            message: `docker build of ${imageUri} was refused: ${engineMessage(error)}`,
            hint: `check ${plan.dockerfileSource === 'generated' ? 'the job' : `the Dockerfile (${plan.dockerfileSource})`} and the builder options (platform, build args)`,
            cause: error,
          });
        }
        throw engineError(error, `building ${imageUri}`, 'build');
      }
      try {
        await readStream(response, follower, signal);
      } catch (error) {
        if (signal?.aborted) throw abortedError('the build', error);
        throw engineError(error, `building ${imageUri}`, 'build');
      }
    } finally {
      if (!packed.stream.readableEnded) packed.stream.destroy();
    }

    if (follower.droppedPackages.size > 0) {
      const names = [...follower.droppedPackages].join(', ');
      logger.warn({ packages: [...follower.droppedPackages] }, `build: packages could not be installed and were left out: ${names}`);
      onLine(`warning: packages could not be installed and were left out of the image: ${names}`);
    }
    if (follower.error) {
      const failed = [...follower.failedPackages];
      const tail = follower.tail();
      throw new LaunchError({
        code: 'build.failed',
        stage: 'build',
        category: 'BuildFailed',
        message: `docker build of ${imageUri} failed: ${follower.error}\n--- last ${tail.length} lines of build output ---\n${tail.join('\n')}`,
        hint: failed.length
          ? `pip could not find ${failed.join(', ')}: check the names and versions in the job's requirements and that they exist for its Python version`
          : `the build step shown at the end of the output failed: fix ${plan.dockerfileSource === 'generated' ? "the job's code or requirements" : `the Dockerfile (${plan.dockerfileSource})`} and enqueue the job again`,
      });
    }

    if (contextDigest) {
      const packedDigest = await packed.digest.catch((error: unknown) => {
        throw engineError(error, `sending the build context of ${imageUri}`, 'build');
      });
      if (packedDigest.check !== contextCheck) {
        await engine
          .getImage(imageUri)
          .remove()
          .catch(() => undefined);
        throw contextError({
          code: 'context_changed',
          message: `the job code in ${request.contextDir} changed while ${imageUri} was being built, so the image no longer matches its tag; it was removed`,
          hint: 'nothing may write into the job code directory while a build runs; the item can be retried',
          retryable: true,
        });
      }
    }

    if (registry || config.destination) await push(imageUri, registry, ctx, onLine);
    logger.info({ imageUri }, 'image built');
    return { ...result, cached: false };
  }

  return {
    specificationVersion: 'v1',
    name: 'docker',
    async verify(ctx: CallContext) {
      try {
        const engine = await docker();
        await (engine.ping as unknown as (opts: object) => Promise<unknown>).call(engine, { abortSignal: ctx.signal });
      } catch (error) {
        throw engineError(error, 'checking the engine (GET /_ping)', 'agent');
      }
    },
    build: (request, ctx) =>
      build(request, ctx).catch((error: unknown) => {
        throw LaunchError.isInstance(error) ? error : toLaunchError(error, { code: 'build.failed', stage: 'build' });
      }),
  };
}
