import { cp, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { LaunchError } from '@launch/core';
import type { Io } from '../io.js';
import { createCliLogger } from '../output/logger.js';
import { streamSink } from '../output/sink.js';
import { cliRedactor } from '../redaction.js';
import { parseCommandArgs, UsageError } from '../usage.js';

export const FETCH_CODE_HELP = `Usage: launch-agent fetch-code --job ENTITY/PROJECT/NAME:ALIAS --dest DIR [options]

Fetches a W&B job's code into DIR, as the agent fetches it: a code artifact (each file checked
against its digest) or a git commit (diff.patch applied), with the job's requirements.frozen.txt.
The Kubernetes runner runs it in the init container wandb-source-code-init (LAUNCH_CODE_INIT_IMAGE)
to fill the emptyDir a base-image job's pod mounts at /mnt/wandb.

The W&B API key comes from WANDB_API_KEY (or ~/.netrc), the server from WANDB_BASE_URL.

Options:
      --job NAME          the job, entity/project/name:alias (a version such as v3, or an alias)
      --dest DIR          an absolute directory, missing or empty; the code is copied into it
      --cache-dir DIR     where downloads are kept (default: a temporary directory, removed after)
  -v, --verbose           debug log lines too
  -h, --help              this help`;

const FLAGS = {
  job: { type: 'string' },
  dest: { type: 'string' },
  'cache-dir': { type: 'string' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `launch-agent fetch-code`: resolves a W&B job with the agent's own resolver (the same digest checks, `diff.patch`
 * applied, the same refusals of entry points and paths leaving the code) and copies its code into `--dest`.
 */
export async function fetchCodeCommand(argv: string[], io: Io): Promise<number> {
  const { values: v } = parseCommandArgs('fetch-code', argv, FLAGS);
  if (v.help) {
    io.stdout.write(FETCH_CODE_HELP + '\n');
    return 0;
  }
  if (!v.job) throw new UsageError('--job is required (the W&B job, entity/project/name:alias)', 'fetch-code');
  if (!v.dest) throw new UsageError('--dest is required (the directory to copy the code into)', 'fetch-code');
  if (!isAbsolute(v.dest)) throw new UsageError(`--dest: expected an absolute directory, found ${JSON.stringify(v.dest)}`, 'fetch-code');
  if (v['cache-dir'] !== undefined && !isAbsolute(v['cache-dir'])) {
    throw new UsageError(`--cache-dir: expected an absolute directory, found ${JSON.stringify(v['cache-dir'])}`, 'fetch-code');
  }
  const job = v.job;
  const dest = v.dest;
  const redactor = cliRedactor(io.env, io.env.WANDB_API_KEY);
  const logger = createCliLogger({
    sink: streamSink(io.stderr, redactor),
    // An init container's log is all a user sees of it: progress at info by default.
    level: (v.verbose?.length ?? 0) > 0 ? 'debug' : 'info',
    format: 'human',
    redactor,
  });

  await checkDest(dest);
  const ownCache = v['cache-dir'] === undefined;
  const cacheDir = v['cache-dir'] ?? (await mkdtemp(join(tmpdir(), 'launch-fetch-code-')));
  const abort = new AbortController();
  const unregister = io.onSignal((signal) => abort.abort(new LaunchError({ code: 'agent.stopping', message: `fetch-code stopped by ${signal}` })));
  // Loaded here: the W&B client is not needed by the other commands.
  const { createWandbJobResolver } = await import('@launch/wandb');
  const resolver = createWandbJobResolver({
    cacheDir,
    env: io.env,
    homedir: io.homedir,
    logger,
    redactor,
    ...(io.env.LAUNCH_ALLOW_FILE_GIT_REMOTES === '1' ? { allowFileRemotes: true } : {}),
  });
  try {
    const resolved = await resolver.resolve(
      { job, spec: {}, runId: 'fetch-code', itemId: 'fetch-code', onProgress: (line) => logger.info(line) },
      { logger, signal: abort.signal },
    );
    if (resolved.kind !== 'code') {
      throw new LaunchError({
        code: 'job.no_code',
        stage: 'agent',
        message: `job ${resolved.job} is an image job (${resolved.image}): it has no code to fetch`,
        hint: 'image jobs run their image as it is; only repo and artifact jobs have code',
      });
    }
    try {
      await mkdir(dest, { recursive: true });
      await cp(resolved.codeDir, dest, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
    } catch (error) {
      throw new LaunchError({
        code: 'job.code_copy_failed',
        stage: 'agent',
        message: `copying the code of job ${resolved.job} into ${dest} failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        hint: `check that ${dest} is writable by this user and has room for the code`,
        cause: error,
      });
    }
    logger.info({ job: resolved.job, source: `${resolved.source} ${resolved.sourceString}`, dest }, "fetched the job's code");
    return 0;
  } finally {
    unregister();
    await resolver.close();
    if (ownCache) await rm(cacheDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** `--dest` must be missing or an empty directory: the code is never mixed with other files. */
async function checkDest(dest: string): Promise<void> {
  const info = await stat(dest).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new LaunchError({
      code: 'job.dest_unusable',
      message: `--dest ${dest}: ${error.code ?? error.message}`,
      hint: 'give a directory this user can write',
    });
  });
  if (!info) return;
  if (!info.isDirectory()) {
    throw new LaunchError({ code: 'job.dest_unusable', message: `--dest ${dest} is not a directory`, hint: 'give a missing or empty directory' });
  }
  const entries = await readdir(dest);
  if (entries.length > 0) {
    throw new LaunchError({
      code: 'job.dest_not_empty',
      message: `--dest ${dest} is not empty (${entries.length} entries, e.g. ${JSON.stringify(entries[0])}): the code is only copied into a missing or empty directory`,
      hint: 'give a new or empty directory',
    });
  }
}
