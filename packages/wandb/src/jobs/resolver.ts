import { createHash } from 'node:crypto';
import { copyFile, readFile, stat } from 'node:fs/promises';
import { homedir as osHomedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import {
  LaunchError,
  LaunchValidationError,
  Redactor,
  silentLogger,
  type CallContext,
  type JobResolver,
  type Logger,
  type ResolvedCodeJob,
  type ResolvedJob,
  type ResolveJobRequest,
} from '@launch/core';
import { zodIssues } from '@launch/core/internal';
import { z } from 'zod';
import { retryOptionsSchema } from '../client.js';
import { resolveRetry, type RetryOptions } from '../retry.js';
import { describeKeySource, resolveWandbSettings, type KeySource } from '../settings.js';
import { createWandbDispatcher } from '../tls.js';
import { createArtifactApi, type ArtifactApi, type ArtifactVersion } from './api.js';
import { downloadArtifact } from './artifact-files.js';
import { createDirCache, type CacheLease } from './dir-cache.js';
import { createDownloader } from './download.js';
import { applyPatch, checkRemote, displayRemote, fetchGitCommit } from './git.js';
import { convertNotebookInDir, scriptNameFor } from './notebook.js';
import { checkEntryPoint, checkInsidePath, parseJobJson, parseJobName, type ArtifactJobJson, type RepoJobJson, type WandbJobJson } from './job-spec.js';

export interface WandbJobResolverOptions {
  /** Where job artifacts and fetched code are kept, by digest (required). */
  cacheDir: string;
  /** Default: `WANDB_API_KEY`, then `~/.netrc` for the API host (as the queue source finds it). */
  apiKey?: string;
  /** Default `WANDB_BASE_URL`, then https://api.wandb.ai. */
  baseUrl?: string;
  /** Where `apiKey` came from, named in errors instead of the key. */
  keySource?: KeySource;
  /** Time limit of one GraphQL request, and of the wait for a download's headers or its next bytes. Default 30 000 ms. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** A PEM file of extra CA certificates (`REQUESTS_CA_BUNDLE` & co. in `env` are read too). */
  caCertFile?: string;
  /** Environment for `WANDB_*` settings and CA bundles. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Home directory for `~/.netrc`. Default `os.homedir()`. */
  homedir?: string;
  /** The git executable for `repo` jobs. Default `/usr/bin/git`. */
  gitPath?: string;
  /** Time limit of one git command. Default 600 000 ms. */
  gitTimeoutMs?: number;
  /**
   * Fetch `file://` git remotes (and submodules). Default false: W&B's agent fetches only `https://`,
   * `ssh://` and `git@host:path` remotes. For tests and local mirrors.
   */
  allowFileRemotes?: boolean;
  /**
   * Size limit of `cacheDir` in bytes: past it, the least recently used entries that nothing holds are removed.
   * Default 10 GiB.
   */
  cacheMaxBytes?: number;
  /**
   * How long a resolved job's code stays held (never evicted) when `release(job)` is not called. Default 3 h.
   */
  cacheHoldMs?: number;
  /** Used when a call's context brings no logger. */
  logger?: Logger;
  /** A shared redactor; the key is added to it. */
  redactor?: Redactor;
}

const optionsSchema = z
  .object({
    cacheDir: z.string().min(1).refine(isAbsolute, 'must be an absolute path'),
    apiKey: z.string().optional(),
    baseUrl: z.string().min(1).optional(),
    keySource: z.enum(['config', 'env', 'netrc']).optional(),
    timeoutMs: z.number().int().positive().optional(),
    retry: retryOptionsSchema.optional(),
    caCertFile: z.string().min(1).optional(),
    // process.env is not a plain object (zod's record refuses it): any object whose values are read as strings.
    env: z
      .custom<Record<string, string | undefined>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'an object of environment variables')
      .optional(),
    homedir: z.string().min(1).optional(),
    gitPath: z.string().min(1).refine(isAbsolute, 'must be an absolute path').optional(),
    gitTimeoutMs: z.number().int().positive().optional(),
    allowFileRemotes: z.boolean().optional(),
    cacheMaxBytes: z.number().int().positive().optional(),
    // setTimeout's limit: a longer delay would fire at once.
    cacheHoldMs: z
      .number()
      .int()
      .nonnegative()
      .max(2 ** 31 - 1)
      .optional(),
    logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).info === 'function', 'a pino-compatible logger').optional(),
    redactor: z.custom<Redactor>((v) => v instanceof Redactor, 'a Redactor from @launch/core').optional(),
  })
  .strict();

/** The files of a job artifact W&B's agent reads. */
const JOB_FILE = 'wandb-job.json';
const REQUIREMENTS_FILE = 'requirements.frozen.txt';
const PATCH_FILE = 'diff.patch';
const MAX_JOB_JSON_BYTES = 16 * 1024 * 1024;
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
export const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;
export const DEFAULT_CACHE_HOLD_MS = 3 * 60 * 60 * 1000;

/** A W&B job resolver, with `close()` for its connections. */
export interface WandbJobResolver extends JobResolver {
  readonly baseUrl: string;
  /**
   * Lets the cached code of a job this resolver returned be evicted again: call it once the code has been copied
   * or built from (`codeDir` is read-only and shared). Without it the code is held for `cacheHoldMs`.
   */
  release(job: ResolvedJob): void;
  /** Closes connections; resolutions in flight fail. Holds are dropped. */
  close(): Promise<void>;
}

/**
 * Turns a spec's `job` into something to run, as W&B's agent does (`LaunchProject._fetch_job`,
 * `Job._configure_launch_project_*`): the job artifact by name and alias through W&B's artifact
 * API, its `wandb-job.json` validated, and the code fetched into `cacheDir`: a `repo` job's commit
 * (shallow git fetch, submodules, `diff.patch` applied), an `artifact` job's `code` artifact (each
 * file checked against its manifest digest), with the job's `requirements.frozen.txt` beside it.
 * Downloads are streamed to disk and cached by digest: a second resolution of the same version
 * downloads nothing. Every failure is a stage-`agent` LaunchError naming the job.
 */
export function createWandbJobResolver(options: WandbJobResolverOptions): WandbJobResolver {
  const checked = optionsSchema.safeParse(options);
  if (!checked.success) {
    throw new LaunchValidationError({ code: 'wandb.options_invalid', subject: 'W&B job resolver options', issues: zodIssues(checked.error, options) });
  }
  const env = options.env ?? process.env;
  const settings = resolveWandbSettings({
    config: { api_key: options.apiKey ?? null, base_url: options.baseUrl ?? null },
    env,
    homedir: options.homedir ?? osHomedir(),
  });
  if (!settings.apiKey) {
    throw new LaunchError({
      code: 'wandb.no_api_key',
      message: `no W&B API key for ${settings.baseUrl}: none given, none in WANDB_API_KEY or ~/.netrc`,
      hint: 'set WANDB_API_KEY, add api_key to the agent config, or run `wandb login`',
    });
  }
  const apiKey = settings.apiKey.trim();
  const keySource = options.keySource ?? settings.keySource;
  const baseUrl = settings.baseUrl;
  const redactor = options.redactor ?? new Redactor();
  const basic = Buffer.from(`api:${apiKey}`).toString('base64');
  redactor.add(apiKey);
  redactor.add(basic);
  const fallbackLogger = options.logger ?? silentLogger;
  const closer = new AbortController();
  const dispatcher = createWandbDispatcher({ ...(options.caCertFile ? { caCertFile: options.caCertFile } : {}), env });
  const retry = resolveRetry(options.retry);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const cache = createDirCache(options.cacheDir, { maxBytes: options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES, logger: fallbackLogger });
  const holdMs = options.cacheHoldMs ?? DEFAULT_CACHE_HOLD_MS;
  /** The cache lease of each code job returned, until `release` or its timer. */
  const held = new WeakMap<ResolvedJob, () => void>();
  const holdTimers = new Set<NodeJS.Timeout>();
  const gitPath = options.gitPath ?? '/usr/bin/git';
  const allowFileRemotes = options.allowFileRemotes ?? false;

  const apiFor = (logger: Logger): ArtifactApi =>
    createArtifactApi({
      baseUrl,
      authorization: `Basic ${basic}`,
      keyOrigin: describeKeySource({ keySource }),
      dispatcher,
      retry,
      timeoutMs,
      logger,
      redactor,
      closed: closer.signal,
    });
  const downloaderFor = (logger: Logger) => createDownloader({ dispatcher, retry, timeoutMs, logger, redactor, closed: closer.signal });

  /** Checks that a looked-up version can be used. */
  function usable(version: ArtifactVersion, what: string, hint: string): void {
    if (version.state === 'DELETED' || version.state === 'GARBAGE_COLLECTED' || version.state === 'PENDING_DELETION') {
      throw new LaunchError({
        code: 'wandb.artifact_deleted',
        stage: 'agent',
        message: `${what} ${version.qualifiedName} was deleted (state ${version.state})`,
        hint,
      });
    }
    if (version.state !== 'COMMITTED') {
      throw new LaunchError({
        code: 'wandb.artifact_not_committed',
        stage: 'agent',
        retryable: version.state === 'PENDING',
        message: `${what} ${version.qualifiedName} is not committed yet (state ${version.state})`,
        hint: 'wait for the run that logs it to finish uploading, then enqueue again',
      });
    }
  }

  async function readJobFile(dir: string, name: string, job: string): Promise<Buffer | undefined> {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info) return undefined;
    if (info.size > MAX_JOB_JSON_BYTES) {
      throw new LaunchError({
        code: 'wandb.job_invalid',
        stage: 'agent',
        message: `${name} of job ${job} is ${info.size} bytes, more than the ${MAX_JOB_JSON_BYTES} read`,
      });
    }
    return readFile(path);
  }

  /** `source.artifact`: W&B's `wandb-artifact://_id/<id>` or `wandb-artifact://[<scheme>://<host>/]entity/project/name:alias`. */
  async function lookUpCode(api: ArtifactApi, ref: string, job: string, signal?: AbortSignal): Promise<ArtifactVersion> {
    const bad = () =>
      new LaunchValidationError({
        code: 'wandb.job_invalid',
        stage: 'agent',
        subject: `wandb-job.json of job ${job}`,
        issues: [
          {
            path: 'source.artifact',
            expected: 'wandb-artifact://_id/<id> or wandb-artifact://entity/project/name:alias',
            found: JSON.stringify(ref.slice(0, 120)),
            message: `expected wandb-artifact://_id/<id> or wandb-artifact://entity/project/name:alias, found ${JSON.stringify(ref.slice(0, 120))}`,
          },
        ],
      });
    if (!ref.startsWith('wandb-artifact://')) throw bad();
    let rest = ref.slice('wandb-artifact://'.length);
    const withHost = /^[a-z][a-z0-9+.-]*:\/\/[^/]+\/(.*)$/i.exec(rest);
    if (withHost) rest = withHost[1]!;
    const parts = rest.split('/');
    let code: ArtifactVersion | null;
    if (parts[0] === '_id') {
      if (!parts[1]) throw bad();
      code = await api.versionById(decodeURIComponent(parts[1]), signal);
    } else {
      if (parts.length < 3 || parts.slice(0, 3).some((p) => !p)) throw bad();
      const [entity, project, nameAlias] = parts as [string, string, string];
      code = await api.versionByName(entity, project, nameAlias.includes(':') ? nameAlias : `${nameAlias}:latest`, signal);
      if (code && code.type !== 'code') {
        throw new LaunchError({
          code: 'wandb.job_invalid',
          stage: 'agent',
          message: `job ${job} names ${code.qualifiedName} as its code, but that artifact has type ${code.type}, not code`,
        });
      }
    }
    if (!code) {
      throw new LaunchError({
        code: 'wandb.code_artifact_not_found',
        stage: 'agent',
        message: `job ${job} references code artifact ${rest}, which W&B at ${baseUrl} does not have (or this API key cannot read)`,
        hint: 'the code artifact may have been deleted; log the job again',
      });
    }
    usable(code, `job ${job} references code artifact`, 'restore the code artifact or log the job again');
    return code;
  }

  const md5 = (b: Buffer | undefined) => (b ? createHash('md5').update(b).digest('base64') : '-');

  return {
    specificationVersion: 'v1',
    name: 'wandb',
    baseUrl,

    async resolve(request: ResolveJobRequest, ctx: CallContext): Promise<ResolvedJob> {
      const leases: Leases = {};
      let resolved: ResolvedJob;
      try {
        resolved = await resolveJob(request, ctx, leases);
      } catch (error) {
        leases.code?.release();
        throw namingJob(error, request.job);
      } finally {
        leases.job?.release();
      }
      const code = leases.code;
      if (code) {
        // Held until the agent has copied or built from it, or for holdMs.
        const timer = setTimeout(() => {
          holdTimers.delete(timer);
          code.release();
        }, holdMs);
        timer.unref();
        holdTimers.add(timer);
        held.set(resolved, () => {
          clearTimeout(timer);
          holdTimers.delete(timer);
          code.release();
        });
      }
      return resolved;
    },

    release(job: ResolvedJob) {
      held.get(job)?.();
      held.delete(job);
    },

    async close() {
      for (const timer of holdTimers) clearTimeout(timer);
      holdTimers.clear();
      closer.abort(new LaunchError({ code: 'wandb.closed', message: 'the W&B job resolver was closed' }));
      await dispatcher.close().catch(() => undefined);
    },
  };

  async function resolveJob(request: ResolveJobRequest, ctx: CallContext, leases: Leases): Promise<ResolvedJob> {
    const logger = ctx?.logger ?? fallbackLogger;
    const signal = ctx?.signal;
    const api = apiFor(logger);
    const downloader = downloaderFor(logger);
    const name = parseJobName(request.job, { entity: request.spec.entity ?? null, project: request.spec.project ?? null });
    const asked = `${name.entity}/${name.project}/${name.name}:${name.alias}`;

    const version = await api.versionByName(name.entity, name.project, `${name.name}:${name.alias}`, signal);
    if (!version) {
      throw new LaunchError({
        code: 'wandb.job_not_found',
        stage: 'agent',
        message: `job ${asked} not found on W&B at ${baseUrl}: no such job artifact or alias, or this API key cannot read it`,
        hint: `check the name in W&B (Jobs tab of project ${name.entity}/${name.project}) and that the agent's key belongs to a member of ${name.entity}`,
      });
    }
    const job = version.qualifiedName;
    if (version.type !== 'job') {
      throw new LaunchError({ code: 'wandb.not_a_job', stage: 'agent', message: `${asked} is an artifact of type ${version.type}, not a job` });
    }
    usable(version, 'job', 'log the job again, or point the queue item at another version');

    const jobDir = (leases.job = await cache.ensure('jobs', `job:${version.digest}`, (staging) =>
      downloadArtifact(api, downloader, { version, dir: staging, what: `job ${job}`, onProgress: request.onProgress, signal }).then(() => undefined),
    ));
    const jobText = await readJobFile(jobDir.dir, JOB_FILE, job);
    if (!jobText) {
      throw new LaunchError({
        code: 'wandb.job_invalid',
        stage: 'agent',
        message: `job ${job} has no ${JOB_FILE}`,
        hint: 'the artifact is not a launch job; log the job again',
      });
    }
    const info: WandbJobJson = parseJobJson(jobText.toString('utf8'), job);
    const entryPoint = info.source.entrypoint ?? [];
    const notebook = info.source.notebook === true && info.source_type !== 'image';
    if (notebook && entryPoint.length === 0) {
      throw new LaunchValidationError({
        code: 'wandb.job_invalid',
        stage: 'agent',
        subject: `wandb-job.json of job ${job}`,
        issues: [
          {
            path: 'source.entrypoint',
            expected: 'the notebook to run',
            found: 'nothing',
            message: 'a notebook job (source.notebook) needs its notebook as the last element of source.entrypoint',
          },
        ],
      });
    }
    const base = {
      job,
      version: version.version,
      entryPoint: [...entryPoint],
      ...(info.input_types !== undefined && info.input_types !== null ? { inputTypes: info.input_types } : {}),
    };
    if (info.source_type === 'image') {
      logger.info({ job, image: info.source.image }, `job ${job} runs image ${info.source.image}`);
      return { ...base, kind: 'image', image: info.source.image };
    }

    // An image job's entry point names paths in its image; a code job's must stay in its code.
    checkEntryPoint(entryPoint, job);
    checkInsidePath(info.source.build_context, 'source.build_context', job);
    checkInsidePath(info.source.dockerfile, 'source.dockerfile', job);
    const requirements = await readJobFile(jobDir.dir, REQUIREMENTS_FILE, job);
    if (!requirements) {
      throw new LaunchError({
        code: 'wandb.job_invalid',
        stage: 'agent',
        message: `job ${job} has no ${REQUIREMENTS_FILE} (W&B's agent needs it for ${info.source_type} jobs too)`,
        hint: 'log the job again with W&B (it records the frozen requirements)',
      });
    }
    const copyRequirements = (dir: string) => copyFile(join(jobDir.dir, REQUIREMENTS_FILE), join(dir, REQUIREMENTS_FILE));
    // A notebook job runs the script W&B's agent makes of its notebook (beside it in the code), converted once
    // when the code is fetched; the notebook is part of the cache key, so the code of a non-notebook job that
    // shares the artifact or commit is never changed.
    const notebookPath = notebook ? entryPoint.at(-1)! : undefined;
    const notebookKey = notebookPath === undefined ? '' : `\0notebook:${notebookPath}`;
    const convert = async (dir: string) => {
      if (notebookPath !== undefined) await convertNotebookInDir(dir, notebookPath, job);
    };
    const extra = {
      ...(info.source.build_context ? { buildContext: info.source.build_context } : {}),
      ...(info.source.dockerfile ? { dockerfile: info.source.dockerfile } : {}),
      ...(info.source.base_image ? { baseImage: info.source.base_image } : {}),
      ...(info.runtime ? { runtime: info.runtime } : {}),
    };

    if (notebookPath !== undefined) base.entryPoint[base.entryPoint.length - 1] = scriptNameFor(notebookPath);
    let resolved: ResolvedCodeJob;
    let built: boolean;
    if (info.source_type === 'artifact') {
      const src = (info as ArtifactJobJson).source;
      const code = await lookUpCode(api, src.artifact, job, signal);
      // As W&B does: requirements first, then the code artifact (a file of the same name in it wins).
      const codeDir = (leases.code = await cache.ensure('code', `artifact:${code.digest}:requirements:${md5(requirements)}${notebookKey}`, async (staging) => {
        await copyRequirements(staging);
        await downloadArtifact(api, downloader, {
          version: code,
          dir: staging,
          what: `code artifact ${code.qualifiedName}`,
          onProgress: request.onProgress,
          signal,
        });
        await convert(staging);
      }));
      built = codeDir.built;
      resolved = { ...base, kind: 'code', source: 'artifact', codeDir: codeDir.dir, sourceString: code.qualifiedName, ...extra };
    } else {
      const git = (info as RepoJobJson).source.git;
      checkRemote(git.remote, job, allowFileRemotes);
      const ref = git.commit === null || git.commit === '' ? null : git.commit;
      const patch = await readJobFile(jobDir.dir, PATCH_FILE, job);
      const hasPatch = patch !== undefined && patch.toString('utf8').trim() !== '';
      // Only a full commit id names fixed content; a branch (or W&B's main/master fallback) is fetched every time.
      const pinned = ref !== null && FULL_SHA.test(ref);
      const key = `repo:${git.remote}\0${pinned ? ref : `${ref ?? ''}@${Date.now()}:${Math.random()}`}\0${hasPatch ? md5(patch) : '-'}\0${md5(requirements)}${notebookKey}`;
      let commit = pinned ? ref : '';
      const gitOptions = { gitPath, allowFileRemotes, logger, timeoutMs: options.gitTimeoutMs ?? 600_000, signal };
      const codeDir = (leases.code = await cache.ensure('repos', key, async (staging) => {
        commit = await fetchGitCommit(staging, git.remote, ref, job, gitOptions);
        if (hasPatch) await applyPatch(staging, join(jobDir.dir, PATCH_FILE), job, gitOptions);
        // As W&B does: the job's requirements after the checkout (they win over the repository's).
        await copyRequirements(staging);
        await convert(staging);
      }));
      built = codeDir.built;
      resolved = { ...base, kind: 'code', source: 'repo', codeDir: codeDir.dir, sourceString: `${displayRemote(git.remote)}#${commit}`, ...extra };
    }
    logger.info(
      { job, source: resolved.source, codeDir: resolved.codeDir, cached: !built },
      `job ${job}: ${resolved.source} code ${built ? 'fetched' : 'cached'} in ${resolved.codeDir}`,
    );
    return resolved;
  }
}

/** The cache entries one resolution holds: the job artifact's (released when it returns) and its code's. */
interface Leases {
  job?: CacheLease;
  code?: CacheLease;
}

/**
 * Every failure leaves as a stage-`agent` LaunchError whose message names the job: errors raised
 * deeper (a download naming only its file, a GraphQL failure, a file system error) get the job put
 * in front, keeping their code, hint and cause.
 */
function namingJob(error: unknown, job: string): LaunchError {
  const name = job.split(':')[0]!.split('/').at(-1)!;
  if (LaunchError.isInstance(error)) {
    if (error.stage === 'agent' && (error.message.includes(job) || error.message.includes(`/${name}:`))) return error;
    return new LaunchError({
      code: error.code,
      stage: 'agent',
      retryable: error.retryable,
      message: `cannot resolve job ${job}: ${error.message}`,
      ...(error.hint ? { hint: error.hint } : {}),
      ...(error.category ? { category: error.category } : {}),
      cause: error,
    });
  }
  const code = (error as NodeJS.ErrnoException)?.code;
  return new LaunchError({
    code: 'wandb.job_fetch_failed',
    stage: 'agent',
    message: `cannot resolve job ${job}: ${error instanceof Error ? error.message : String(error)}`,
    ...(code === 'ENOSPC' ? { hint: 'the cache directory is out of space' } : {}),
    cause: error,
  });
}
