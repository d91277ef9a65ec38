import { mkdir, stat } from 'node:fs/promises';
import { childLogger, LaunchError, type CallContext, type Runner, type RunRequest } from '@launch/core';
import { parseRunRequest } from '../run-request.js';
import { logFilePath, openLogStream } from './log-file.js';
import { parseLocalProcessRunnerOptions, type LocalProcessRunnerOptions } from './options.js';
import { createProcessGroupGuard, type ProcessGroupGuard } from './orphan-guard.js';
import { startProcessRun, type ProcessRun } from './process-run.js';
import { createSpawner } from './spawner.js';

/** How long the spawner thread outlives the last run it started (a busy agent keeps it; an idle one frees it). */
const SPAWNER_IDLE_MS = 30_000;

/** A runner for jobs that run as processes on the agent's machine. */
export interface LocalProcessRunner extends Runner {
  /** Cancels every live run (SIGTERM, then SIGKILL after the grace period), waits until they ended, and ends the orphan guard. */
  close(): Promise<void>;
}

/**
 * Runs jobs as local processes (W&B's `local-process` resource).
 *
 * The process gets exactly `request.env` as its environment: the agent merges its own environment
 * (PATH, HOME, …) with the run's variables before calling `run()`, so a variable missing there is
 * missing in the job. With no PATH at all, commands resolve against the system default
 * (`/usr/bin:/bin`). Each run lives in its own process group so cancel reaches its whole tree.
 * Runs die with the agent: on a normal or crashing exit (`killOnExit`, default on) and, with
 * `orphanGuard: true`, also when the agent is killed with `kill -9`.
 *
 * @example
 * const runner = createLocalProcessRunner({ logDir: '/var/log/launch', orphanGuard: true });
 * const run = await runner.run(request, { logger });
 * const status = await run.wait(); // { state: 'finished', exitCode: 0, … }
 */
export function createLocalProcessRunner(options: LocalProcessRunnerOptions): LocalProcessRunner {
  const config = parseLocalProcessRunnerOptions(options);
  const live = new Set<ProcessRun>();
  let logDirReady: Promise<void> | undefined;
  let closing = false;
  // Runs whose process is being spawned: not yet in `live`, so close() waits for them first.
  const starting = new Set<Promise<ProcessRun>>();

  // The last resort against orphans when the agent exits without cancelling (crash, bare exit()).
  const onProcessExit = () => {
    for (const run of live) run.killNow();
  };
  // Against the deaths no exit handler sees (kill -9): a watchdog process that outlives the agent.
  const guard: ProcessGroupGuard | undefined = config.orphanGuard ? createProcessGroupGuard({ graceMs: config.killGracePeriodMs }) : undefined;
  // fork() and the wait for exec() happen on a worker thread: the event loop goes on claiming and reporting jobs.
  const spawner = createSpawner({ idleMs: SPAWNER_IDLE_MS });
  const track = (run: ProcessRun) => {
    if (config.killOnExit && live.size === 0) process.on('exit', onProcessExit);
    live.add(run);
    // Each run is its own process group (pgid = pid).
    if (run.pid !== undefined) guard?.track(run.pid);
  };
  const untrack = (run: ProcessRun) => {
    live.delete(run);
    if (run.pid !== undefined) guard?.untrack(run.pid);
    if (config.killOnExit && live.size === 0) process.off('exit', onProcessExit);
  };

  function ensureLogDir(): Promise<void> {
    logDirReady ??= mkdir(config.logDir, { recursive: true }).then(
      () => undefined,
      (error: NodeJS.ErrnoException) => {
        logDirReady = undefined; // retry on the next run; the directory may be fixed by then
        throw new LaunchError({
          code: 'run.log_dir',
          stage: 'run',
          retryable: true,
          message: `cannot create the run log directory ${config.logDir}: ${error.code ?? error.message}`,
          hint: 'set the local-process runner `logDir` to a directory the agent may write',
          cause: error,
        });
      },
    );
    return logDirReady;
  }

  async function checkWorkingDir(dir: string): Promise<void> {
    let isDir = false;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) {
      throw new LaunchError({
        code: 'run.working_dir',
        stage: 'run',
        category: 'InvalidSpec',
        message: `the working directory ${dir} does not exist or is not a directory`,
        hint: 'set `overrides.working_dir` in the launch spec to an existing directory on the agent host',
      });
    }
  }

  return {
    specificationVersion: 'v1',
    name: 'local-process',
    warningStage: 'local-process',
    resources: ['local-process'],
    capabilities: { adopt: false, remote: false, needsImage: false },

    async run(input: RunRequest, ctx: CallContext) {
      const request = parseRunRequest(input);
      if (request.image) {
        // W&B's local-process runner refuses a docker image: running the entry point on the host instead would
        // silently drop the image the item asks for.
        throw new LaunchError({
          code: 'run.image_not_supported',
          stage: 'run',
          category: 'InvalidSpec',
          message: `the item asks for the image ${request.image}, and the local-process runner runs no images`,
          hint: 'run it with resource local-container or kubernetes, or remove docker.docker_image from the launch spec',
        });
      }
      if (request.entryPoint.length === 0) {
        throw new LaunchError({
          code: 'run.no_entry_point',
          stage: 'run',
          category: 'InvalidSpec',
          message: 'the job has no entry point to run as a local process',
          hint: 'give the job an entry point (`overrides.entry_point` in the launch spec, e.g. ["python", "train.py"])',
        });
      }
      if (closing) {
        throw new LaunchError({
          code: 'run.runner_closed',
          stage: 'run',
          retryable: true,
          message: 'the local-process runner is shutting down',
        });
      }
      await Promise.all([ensureLogDir(), request.workingDir ? checkWorkingDir(request.workingDir) : undefined]);
      const logPath = logFilePath(config.logDir, request.itemId);
      let logStream;
      try {
        logStream = await openLogStream(logPath);
      } catch (error) {
        throw new LaunchError({
          code: 'run.log_file',
          stage: 'run',
          retryable: true,
          message: `cannot open the run log ${logPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          hint: 'set the local-process runner `logDir` to a directory the agent may write',
          cause: error,
        });
      }
      if (ctx.signal?.aborted) {
        logStream.destroy();
        throw new LaunchError({ code: 'run.aborted', stage: 'run', retryable: true, message: 'run submission was aborted' });
      }
      const logger = childLogger(ctx.logger ?? config.logger, { runner: 'local-process', runId: request.runId });
      const started = startProcessRun({
        request,
        logPath,
        logStream,
        killGracePeriodMs: config.killGracePeriodMs,
        maxLogTailBytes: config.maxLogTailBytes,
        logTailLines: config.logTailLines,
        logger,
        spawner,
        onStarted: track,
        onSettled: untrack,
      });
      starting.add(started);
      const forget = () => void starting.delete(started);
      started.then(forget, forget);
      return started;
    },

    async close() {
      closing = true;
      await Promise.allSettled([...starting]);
      const runs = [...live];
      await Promise.all(runs.map((run) => run.cancel()));
      await Promise.all(runs.map((run) => run.wait()));
      guard?.close();
      await spawner.close();
    },
  };
}
