import type { WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import type { Diagnosis, LogChunk, Logger, RunState, RunStatus, SubmittedRun } from '@launch/core';
import { readLogTail } from '../local-process/log-file.js';
import { createTailBuffer } from '../local-process/log-tail.js';
import { createDemuxer } from './demux.js';
import { engineMessage, isUnreachable, statusOf, type EngineEndpoint } from './engine.js';

/** Order of states; a run never moves backwards, so listeners see a non-decreasing sequence. */
const RANK: Record<RunState, number> = { unknown: 0, starting: 1, running: 2, stopping: 3, failed: 4, finished: 4, stopped: 4, preempted: 4 };

/** After the container stopped, how long the log stream may take to deliver its last frames. */
const LOG_DRAIN_MS = 5_000;

export interface ContainerRunOptions {
  docker: Docker;
  endpoint: EngineEndpoint;
  /** The deterministic container name (also accepted by the engine in place of the id). */
  name: string;
  id: string;
  image: string;
  runId: string;
  itemId: string;
  queue?: string;
  spec?: unknown;
  /** Remove the container once its outcome is known (`rm`); otherwise rename it so its name is free again. */
  remove: boolean;
  /** The container still has to be started (a fresh run, or one adopted in state `created`). */
  needsStart: boolean;
  /** Output from this time on (seconds since the epoch) is appended to the log; for adopted runs. */
  logsSince?: number;
  logPath: string;
  /** Already open for appending; the run owns it from here and closes it when it ends. */
  logStream: WriteStream;
  killGracePeriodMs: number;
  maxLogTailBytes: number;
  logTailLines: number;
  logger: Logger;
  /** Called once, after the terminal state was published (the container stays until `reported()`). */
  onSettled(run: ContainerRun): void;
}

/** A container run: a SubmittedRun plus what the runner needs to manage it. */
export interface ContainerRun extends SubmittedRun {
  readonly containerName: string;
  /** Resolves once `start` was attempted (fresh runs): `run()` returns after this. */
  readonly started: Promise<void>;
  /** The agent recorded the outcome: remove (`rm`) or rename the container. Idempotent; waits for the end. */
  reported(): Promise<void>;
  /** Stops following without touching the container (runner closed while the engine is gone). */
  detach(): void;
}

interface ContainerState {
  Status?: string;
  Running?: boolean;
  ExitCode?: number;
  OOMKilled?: boolean;
  Error?: string;
}

/**
 * Follows one container from start (or adoption) to its end: starts it when needed, streams its demultiplexed
 * output to the log file and `onLog` listeners, waits for it to stop and reads its exit code and OOM flag.
 * The ended container keeps the outcome until the agent recorded it (`reported()`): then it is removed (`rm`)
 * or renamed, so that a container whose outcome was reported is never adopted and reported again.
 */
export function followContainer(options: ContainerRunOptions): ContainerRun {
  const { docker, logger, logStream, logPath } = options;
  const container = docker.getContainer(options.id);
  const statusListeners = new Set<(status: RunStatus) => void>();
  const logListeners = new Set<(chunk: LogChunk) => void>();
  const tail = createTailBuffer(options.maxLogTailBytes);
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  let current: RunStatus = { state: options.needsStart ? 'starting' : 'running', messages: [] };
  let exited = false;
  let settled = false;
  let detached = false;
  let cancelRequested = false;
  let cancelled = false;
  let killTimer: NodeJS.Timeout | undefined;
  let logBroken = false;
  let logs: Readable | undefined;
  /** Aborts the in-flight wait request when the runner stops following (a hung engine must not hang close()). */
  const abort = new AbortController();
  let resolveWait!: (status: RunStatus) => void;
  const terminal = new Promise<RunStatus>((resolve) => (resolveWait = resolve));
  let resolveStarted!: () => void;
  const started = new Promise<void>((resolve) => (resolveStarted = resolve));

  const copy = (status: RunStatus): RunStatus => ({ ...status, messages: [...status.messages] });

  function publish(next: RunStatus): void {
    if (RANK[next.state] < RANK[current.state] || (settled && next !== current)) return;
    current = next;
    for (const listener of [...statusListeners]) {
      try {
        listener(copy(next));
      } catch (error) {
        logger.warn({ err: error }, 'a run status listener threw');
      }
    }
  }

  function emitLog(chunk: LogChunk): void {
    for (const listener of [...logListeners]) {
      try {
        listener(chunk);
      } catch (error) {
        logger.warn({ err: error }, 'a run log listener threw');
      }
    }
  }

  logStream.on('error', (error) => {
    // A full disk must not stall the job: keep streaming to listeners and the in-memory tail.
    logBroken = true;
    logger.warn({ err: error, logPath }, 'writing the run log failed; later output is not saved to the file');
    logs?.resume();
  });

  const demux = createDemuxer((stream, payload) => {
    if (!logBroken && !logStream.write(payload) && logs && !logs.isPaused()) {
      // Back-pressure: a job that writes faster than the disk waits in the engine's buffer, not in our memory.
      logs.pause();
      logStream.once('drain', () => logs?.resume());
    }
    tail.push(payload);
    if (logListeners.size > 0) {
      const text = decoders[stream].write(payload);
      if (text) emitLog({ stream, text });
    }
  });

  /** Streams the container's output until the engine ends the stream (the container stopped). */
  async function streamLogs(follow: boolean): Promise<void> {
    try {
      const opts = { stdout: true, stderr: true, ...(options.logsSince !== undefined ? { since: options.logsSince } : {}) };
      if (!follow) {
        const buf = (await container.logs({ ...opts, follow: false })) as unknown as Buffer;
        if (buf?.length) demux.push(Buffer.from(buf));
        return;
      }
      logs = (await container.logs({ ...opts, follow: true })) as unknown as Readable;
      logs.on('data', (chunk: Buffer) => demux.push(chunk));
      await finished(logs).catch(() => undefined);
    } catch (error) {
      if (statusOf(error) !== 404 && !detached) logger.warn({ err: error, container: options.name }, 'reading the container log failed');
    }
  }

  /** `POST /containers/{id}/wait`, retried while the engine is briefly unreachable; `gone` when the container is. */
  async function waitForExit(): Promise<{ kind: 'exited'; statusCode?: number } | { kind: 'gone' }> {
    let delay = 500;
    for (;;) {
      try {
        const result = (await container.wait({ condition: 'not-running', abortSignal: abort.signal } as unknown as Docker.ContainerWaitOptions)) as
          | { StatusCode?: number }
          | undefined;
        return { kind: 'exited', statusCode: typeof result?.StatusCode === 'number' ? result.StatusCode : undefined };
      } catch (error) {
        if (statusOf(error) === 404 || detached) return { kind: 'gone' };
        logger.warn({ err: error, container: options.name }, `waiting for the container failed; retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  async function inspectState(): Promise<ContainerState | undefined> {
    try {
      const info = await container.inspect();
      return info.State as ContainerState;
    } catch (error) {
      if (statusOf(error) !== 404) logger.warn({ err: error, container: options.name }, 'inspecting the container failed');
      return undefined;
    }
  }

  async function main(): Promise<void> {
    let startError: unknown;
    if (options.needsStart) {
      if (!cancelled) {
        try {
          await container.start();
        } catch (error) {
          if (statusOf(error) !== 304) startError = error; // 304: already started (another agent followed it first)
        }
      }
      resolveStarted();
      if (!startError && !cancelled) publish({ state: 'running', messages: [] });
    } else resolveStarted();

    let outcome: 'exited' | 'gone' | 'not-started' = 'not-started';
    let waitedCode: number | undefined;
    let logsDone: Promise<void> = Promise.resolve();
    if (!startError && !(cancelled && options.needsStart)) {
      logsDone = streamLogs(true);
      const result = await waitForExit();
      outcome = result.kind;
      if (result.kind === 'exited') waitedCode = result.statusCode;
    } else if (startError) {
      await streamLogs(false);
    }
    exited = true;
    if (killTimer) {
      clearTimeout(killTimer);
      killTimer = undefined;
    }
    // The stream ends when the container stops; bound the wait for its last frames.
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([logsDone, new Promise<void>((r) => (drainTimer = setTimeout(r, LOG_DRAIN_MS)))]);
    clearTimeout(drainTimer);
    logs?.destroy();
    // Another follower of the same container (a second agent) may have removed it already: the wait answer's
    // exit code then stands in for the inspected state.
    const inspected = outcome === 'gone' || detached ? undefined : await inspectState();
    const state = inspected ?? (waitedCode !== undefined ? { ExitCode: waitedCode } : undefined);
    await settle(terminalStatus(outcome, state, startError));
  }

  let released: Promise<void> | undefined;
  async function cleanup(): Promise<void> {
    if (detached) return;
    try {
      if (options.remove) await container.remove({ force: true, v: true });
      else await container.rename({ name: `${options.name}-ended-${options.id.slice(0, 12)}` });
    } catch (error) {
      if (statusOf(error) === 404) return;
      logger.warn(
        { err: error, container: options.name },
        options.remove ? 'removing the ended container failed' : 'renaming the ended container failed; a restarted agent may report it again',
      );
    }
  }

  async function settle(status: RunStatus): Promise<void> {
    if (settled) return;
    for (const stream of ['stdout', 'stderr'] as const) {
      const text = decoders[stream].end();
      if (text && logListeners.size > 0) emitLog({ stream, text });
    }
    logStream.end();
    await finished(logStream).catch(() => undefined);
    publish(status);
    settled = true;
    logger.debug({ container: options.name, state: status.state, exitCode: status.exitCode }, 'container run ended');
    resolveWait(copy(status));
    options.onSettled(run);
  }

  function terminalStatus(outcome: 'exited' | 'gone' | 'not-started', state: ContainerState | undefined, startError: unknown): RunStatus {
    const exitCode = typeof state?.ExitCode === 'number' ? state.ExitCode : null;
    if (startError) return startFailure(startError, options.image, exitCode);
    if (cancelled) {
      return { state: 'stopped', messages: [`container ${options.name} stopped by cancel${exitCode !== null ? ` (exit code ${exitCode})` : ''}`], exitCode };
    }
    if (outcome === 'gone' || !state) {
      const message = detached
        ? `stopped following container ${options.name}`
        : `container ${options.name} was removed outside the agent before it reported an exit code`;
      return {
        state: 'failed',
        messages: [message],
        exitCode: null,
        diagnosis: { category: 'NonZeroExit', message, hint: 'something removed the container (docker rm -f, a prune); rerun the item' },
        logTail: tail.text(options.logTailLines),
      };
    }
    if (state.OOMKilled) {
      const message = `container ${options.name} was killed for running out of memory (exit code ${exitCode ?? 'unknown'})`;
      return {
        state: 'failed',
        messages: [message],
        exitCode,
        diagnosis: {
          category: 'OOMKilled',
          message,
          hint: 'raise `memory` (`m`) in resource_args.local-container, or make the job use less memory',
        },
        logTail: tail.text(options.logTailLines),
      };
    }
    if (exitCode === 0) return { state: 'finished', messages: [], exitCode: 0 };
    const message = `container exited with code ${exitCode ?? 'unknown'}${state.Error ? `: ${state.Error}` : ''}`;
    const diagnosis: Diagnosis = {
      category: 'NonZeroExit',
      message,
      hint:
        exitCode === 137
          ? `something outside the agent killed the container with SIGKILL (docker kill, the host's out-of-memory killer); see the log at ${logPath}`
          : `the job's own code failed; see the last lines of its log in ${logPath}`,
    };
    return { state: 'failed', messages: [message], exitCode, diagnosis, logTail: tail.text(options.logTailLines) };
  }

  async function signal(sig: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    try {
      await container.kill({ signal: sig });
    } catch (error) {
      // 404: gone; 409: not running. Either way nothing is left to stop.
      const status = statusOf(error);
      if (status !== 404 && status !== 409) logger.warn({ err: error, container: options.name, signal: sig }, 'signalling the container failed');
    }
  }

  const run: ContainerRun = {
    id: options.id,
    runId: options.runId,
    itemId: options.itemId,
    queue: options.queue,
    spec: options.spec,
    containerName: options.name,
    started,
    status: async () => copy(current),
    onStatus(listener) {
      statusListeners.add(listener);
      return () => void statusListeners.delete(listener);
    },
    onLog(listener) {
      logListeners.add(listener);
      return () => void logListeners.delete(listener);
    },
    logs: () => readLogTail(logPath, options.maxLogTailBytes),
    wait: () => terminal,
    async cancel() {
      if (cancelRequested || settled) return;
      cancelRequested = true;
      // A container that already stopped keeps its own outcome.
      if (exited) return;
      cancelled = true;
      publish({ state: 'stopping', messages: [`cancel requested; sent SIGTERM to container ${options.name}`] });
      if (options.killGracePeriodMs === 0) return signal('SIGKILL');
      killTimer = setTimeout(() => {
        killTimer = undefined;
        if (exited) return;
        publish({ state: 'stopping', messages: [`container ${options.name} did not stop within ${options.killGracePeriodMs} ms of SIGTERM; sent SIGKILL`] });
        void signal('SIGKILL');
      }, options.killGracePeriodMs);
      await signal('SIGTERM');
    },
    reported() {
      // The outcome is recorded at the queue: the container may go (`rm`), or be renamed so its name is free for
      // the item's next run and no restarted agent adopts and reports it again.
      released ??= terminal.then(cleanup);
      return released;
    },
    detach() {
      detached = true;
      abort.abort();
      logs?.destroy();
    },
  };

  void main().catch(async (error: unknown) => {
    logger.error({ err: error, container: options.name }, 'following the container failed');
    resolveStarted();
    const message = `following container ${options.name} failed: ${engineMessage(error)}`;
    await settle({
      state: 'failed',
      messages: [message],
      exitCode: null,
      diagnosis: {
        category: 'NonZeroExit',
        message,
        hint: isUnreachable(error) ? `the Docker Engine at ${options.endpoint.describe} went away` : 'see the agent log',
      },
    });
  });
  return run;
}

function startFailure(error: unknown, image: string, exitCode: number | null): RunStatus {
  const detail = engineMessage(error);
  const missing = /executable file not found|no such file or directory/i.test(detail);
  const denied = /permission denied/i.test(detail);
  const message = `the container could not start: ${detail}`;
  return {
    state: 'failed',
    messages: [message],
    exitCode,
    diagnosis: {
      category: denied ? 'PermissionDenied' : 'InvalidSpec',
      message,
      hint: missing
        ? `check the job's entry point: the command must exist in the image ${image} (an absolute path, or a program on the image's PATH)`
        : denied
          ? `make the entry point executable in the image ${image}`
          : `check the job's entry point and resource_args against the image ${image}`,
    },
  };
}
