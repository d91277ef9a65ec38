import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, normalize, posix } from 'node:path';
import type { BuildRequest } from '../contracts/builder.js';
import type { ResolvedCodeJob, ResolvedJob } from '../contracts/job-resolver.js';
import type { CodeSource, Runner } from '../contracts/runner.js';
import { LaunchError, toLaunchError } from '../errors.js';
import { specImage, type LaunchSpec } from '../spec.js';
import type { JobContext, JobTracker } from './job.js';

/** W&B's default base image for a `repo` or `artifact` job run without a build (NoOp builder). */
export const DEFAULT_BASE_IMAGE = 'python:3.12-slim';
/** Where W&B mounts a job's code in its run (`/mnt/wandb`). */
export const CODE_MOUNT_PATH = '/mnt/wandb';

/** What the agent runs for one item once its W&B job is resolved. */
export interface PreparedRun {
  image?: string;
  /** Replaces the spec's `overrides.entry_point` when set (a builder's choice, or the job's own). */
  entryPoint?: string[];
  /** Replaces `overrides.args` when set (the requirements wrapper takes them as its own arguments). */
  args?: string[];
  workingDir?: string;
  code?: { dir: string; mountPath: string; source?: CodeSource };
}

type Build = (spec: LaunchSpec, extra: Pick<BuildRequest, 'contextDir' | 'job'>) => Promise<{ image: string; entryPoint?: string[] }>;

/**
 * W&B's `fetch_and_validate_project` for an item with a `job`: the resolver reads the job artifact and fetches
 * its code. Undefined when the item names no job, or names one but carries its own image and the agent has no
 * resolver (the image is run as it is, as before).
 */
export async function resolveJob(ctx: JobContext, job: JobTracker, spec: LaunchSpec, runId: string): Promise<ResolvedJob | undefined> {
  if (!spec.job) return undefined;
  const resolver = ctx.opts.jobResolver;
  if (!resolver) {
    if (specImage(spec)) return undefined;
    throw new LaunchError({
      code: 'job.no_resolver',
      stage: 'agent',
      message: `the item names the W&B job ${spec.job}, but this agent cannot fetch W&B jobs`,
      hint: 'run the agent with a W&B API key (WANDB_API_KEY) so it can read the job, or give the item an image (docker.docker_image)',
    });
  }
  try {
    const resolved = await resolver.resolve(
      {
        job: spec.job,
        spec,
        runId,
        itemId: job.item.id,
        onProgress: (line) => ctx.emitter.emit('build:progress', { item: job.item, runId, line: ctx.redactor.redact(line) }),
      },
      { logger: ctx.logger, signal: job.abort?.signal },
    );
    ctx.logger.info({ itemId: job.item.id, runId, job: resolved.job, kind: resolved.kind }, 'resolved the W&B job');
    return resolved;
  } catch (error) {
    throw toLaunchError(error, { code: 'job.resolve_failed', stage: 'agent' });
  }
}

/**
 * Decides the image, entry point and code of a run from its resolved W&B job (W&B's `_task_run_job` step 6):
 * the item's `docker_image`, else the job's image, else for a `repo`/`artifact` job an image built from its code
 * by the configured builder, or (no builder, or `noop`) a base image with the code mounted. `overrides.entry_point`
 * wins over the job's entry point; a builder's choice wins over both.
 */
export async function prepareJobRun(
  ctx: JobContext,
  job: JobTracker,
  spec: LaunchSpec,
  resolved: ResolvedJob,
  runner: Runner,
  resource: string,
  build: Build,
): Promise<PreparedRun> {
  const override = spec.overrides?.entry_point;
  const jobEntry = override && override.length > 0 ? undefined : resolved.entryPoint.length > 0 ? resolved.entryPoint : undefined;
  const direct = specImage(spec);
  if (resolved.kind === 'image') {
    if (!runner.capabilities.needsImage && !direct) {
      // W&B's local-process runner refuses a docker image too: running the entry point on the host instead would
      // silently drop the image the job is made of.
      throw new LaunchError({
        code: 'run.image_not_supported',
        stage: 'run',
        message: `job ${resolved.job} is an image job (${resolved.image}), and the ${runner.name} runner runs no images`,
        hint: 'run it with resource local-container or kubernetes, as W&B also requires',
      });
    }
    return { image: direct ?? resolved.image, entryPoint: jobEntry };
  }
  checkEntryPoint(resolved, jobEntry ?? override ?? []);

  if (!runner.capabilities.needsImage) {
    // A local run: in its own copy of the code (runs write beside their code; the fetched copy is shared).
    const dir = await codeCopy(job, resolved);
    return { image: direct, entryPoint: jobEntry, workingDir: insideCode(dir, spec.overrides?.working_dir ?? undefined, join) };
  }
  if (direct) return { image: direct, entryPoint: jobEntry };
  const builder = ctx.opts.builder;
  if (builder && builder.name !== 'noop') {
    const built = await build(
      // The resolved version stands for the code: W&B's `name:vN` tag form applies even to an item asking for `latest`.
      { ...spec, job: resolved.job },
      {
        contextDir: resolved.codeDir,
        job: {
          ...(resolved.buildContext ? { buildContext: resolved.buildContext } : {}),
          ...(resolved.dockerfile ? { dockerfile: resolved.dockerfile } : {}),
          ...(resolved.entryPoint.length > 0 ? { entryPoint: resolved.entryPoint } : {}),
          ...(resolved.runtime ? { runtime: resolved.runtime } : {}),
        },
      },
    );
    return { image: built.image, entryPoint: built.entryPoint ?? jobEntry };
  }

  // W&B's NoOp builder with code: a base image, the code mounted at /mnt/wandb.
  if (!runner.capabilities.mountsCode) {
    throw new LaunchError({
      code: 'build.cannot_mount_code',
      stage: 'build',
      category: 'BuildFailed',
      message: `job ${resolved.job} has code (${resolved.source} ${resolved.sourceString}) and no builder is configured, but the ${runner.name} runner cannot mount code into a base image`,
      hint: 'set builder.type to docker or kaniko (with builder.destination) so the code is built into an image, or give the item an image',
    });
  }
  const argsBase = (spec.resource_args?.[resource] as { builder?: { base_image?: unknown } } | undefined)?.builder?.base_image;
  const configured = typeof argsBase === 'string' && argsBase !== '' ? argsBase : resolved.baseImage;
  const image = configured ?? DEFAULT_BASE_IMAGE;
  const dir = await codeCopy(job, resolved);
  const workingDir = insideCode(CODE_MOUNT_PATH, spec.overrides?.working_dir ?? undefined, posix.join);
  const command = jobEntry ?? override ?? [];
  // The resolved version, so a runner fetching the code again inside the run (an init container) gets this code.
  const source: CodeSource = { kind: 'wandb-job', job: resolved.job, type: resolved.source, sourceString: resolved.sourceString };
  const code = { dir, mountPath: CODE_MOUNT_PATH, source };
  if (configured || command.length === 0) return { image, entryPoint: jobEntry, workingDir, code };
  // The auto default base image has none of the job's packages: install them first, as W&B's wrapper does.
  return {
    image,
    entryPoint: ['sh', '-c', INSTALL_THEN_EXEC, 'launch-entry', ...command],
    args: spec.overrides?.args ?? [],
    workingDir,
    code,
  };
}

/** Installs the job's requirements from the first file found, then execs the job's command with its arguments. */
const INSTALL_THEN_EXEC = [
  'set -e',
  'if [ -f requirements.txt ]; then pip install -r requirements.txt',
  'elif [ -f pyproject.toml ]; then pip install .',
  'elif [ -f requirements.frozen.txt ]; then pip install -r requirements.frozen.txt',
  'fi',
  'exec "$@"',
].join('\n');

/** The job's entry point must name a file inside its code (W&B runs it from the code directory). */
function checkEntryPoint(resolved: ResolvedCodeJob, entryPoint: string[]): void {
  for (const part of entryPoint) {
    if (!/\.(py|sh|ipynb)$/.test(part)) continue;
    const escapes = isAbsolute(part) || normalize(part).split(/[\\/]/)[0] === '..';
    if (escapes) {
      throw new LaunchError({
        code: 'job.entry_point_outside_code',
        stage: 'agent',
        message: `job ${resolved.job}: the entry point ${JSON.stringify(entryPoint)} names ${part}, which is outside the job's code`,
        hint: 'the entry point names a file relative to the code directory, e.g. train.py or src/train.py',
      });
    }
  }
}

/** `base[/workingDir]`, refusing a working directory that leaves the code. */
function insideCode(base: string, workingDir: string | undefined, joiner: (...parts: string[]) => string): string {
  if (!workingDir) return base;
  if (isAbsolute(workingDir) || normalize(workingDir).split(/[\\/]/)[0] === '..') {
    throw new LaunchError({
      code: 'spec.working_dir_outside_code',
      stage: 'agent',
      message: `overrides.working_dir: expected a directory inside the job's code, found ${JSON.stringify(workingDir)}`,
      hint: 'give working_dir relative to the code, e.g. src',
    });
  }
  return joiner(base, workingDir);
}

/** A private copy of the job's code for this run, removed when the job ends. */
async function codeCopy(job: JobTracker, resolved: ResolvedCodeJob): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'launch-code-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  job.cleanups = [...(job.cleanups ?? []), cleanup];
  try {
    await cp(resolved.codeDir, dir, { recursive: true, verbatimSymlinks: true });
  } catch (error) {
    throw new LaunchError({
      code: 'job.code_copy_failed',
      stage: 'agent',
      message: `copying the code of job ${resolved.job} for this run failed: ${(error as Error).message}`,
      cause: error,
    });
  }
  return dir;
}
