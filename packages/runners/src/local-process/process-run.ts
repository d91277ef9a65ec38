import type { WriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { LaunchError, type Diagnosis, type LogChunk, type Logger, type RunRequest, type RunState, type RunStatus, type SubmittedRun } from '@launch/core';
import { readLogTail } from './log-file.js';
import { createTailBuffer } from './log-tail.js';
import { groupExists, signalGroup } from './process-group.js';
import type { SpawnedProcess, Spawner } from './spawner.js';

/** Order of states; a run never moves backwards, so listeners see a non-decreasing sequence. */
const RANK: Record<RunState, number> = {
  unknown: 0,
  starting: 1,
  running: 2,
  stopping: 3,
  failed: 4,
  finished: 4,
  stopped: 4,
  preempted: 4,
};

/**
 * After the job's top process exits, how long a background child may keep stdout/stderr open before
 * the runner stops reading; without it a daemonised grandchild would keep the run "running" forever.
 */
const STDIO_DRAIN_MS = 2_000;

export interface ProcessRunOptions {
  request: RunRequest;
  logPath: string;
  /** Already open for appending; the run owns it from here and closes it when it ends. */
  logStream: WriteStream;
  killGracePeriodMs: number;
  maxLogTailBytes: number;
  logTailLines: number;
  logger: Logger;
  /** Starts the process (off the agent's event loop). */
  spawner: Spawner;
  /** Called once, synchronously, as soon as the process has a pid (before any `onSettled`). */
  onStarted(run: ProcessRun): void;
  /** Called once, when the run reached its terminal state. */
  onSettled(run: ProcessRun): void;
}

/** A local process run: a SubmittedRun plus the hooks the runner needs. */
export interface ProcessRun extends SubmittedRun {
  readonly pid: number | undefined;
  /** SIGKILLs the process group at once; the runner calls this when the agent process exits. */
  killNow(): void;
}

/**
 * Spawns the request's entry point in its own process group, writes its output to the log stream
 * and to `onLog` listeners, and tracks its state. Rejects with a LaunchError only when `spawn` itself
 * throws; a command that is missing or not executable ends as a `failed` run instead.
 */
export async function startProcessRun(options: ProcessRunOptions): Promise<ProcessRun> {
  const { request, logPath, logStream, logger } = options;
  const [command, ...entryArgs] = request.entryPoint as [string, ...string[]];

  const statusListeners = new Set<(status: RunStatus) => void>();
  const logListeners = new Set<(chunk: LogChunk) => void>();
  const tail = createTailBuffer(options.maxLogTailBytes);
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  let current: RunStatus = { state: 'starting', messages: [] };
  let spawnError: NodeJS.ErrnoException | undefined;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let closed = false;
  let settled = false;
  let cancelRequested = false;
  let cancelled = false;
  let killSent = false;
  let killTimer: NodeJS.Timeout | undefined;
  let drainTimer: NodeJS.Timeout | undefined;
  let logBroken = false;
  let paused = false;
  let resolveWait!: (status: RunStatus) => void;
  const terminal = new Promise<RunStatus>((resolve) => (resolveWait = resolve));
  // Settling waits until the run object exists and the runner knows it (a fast process can end first).
  let markBuilt!: () => void;
  const built = new Promise<void>((resolve) => (markBuilt = resolve));

  logStream.on('error', (error) => {
    // A full disk must not stall the job: keep streaming to listeners and the in-memory tail.
    logBroken = true;
    logger.warn({ err: error, logPath }, 'writing the run log failed; later output is not saved to the file');
    resume();
  });

  // No shell: arguments reach the program verbatim, so nothing in a spec can inject commands.
  const child: SpawnedProcess = options.spawner.spawn(
    { command, args: [...entryArgs, ...request.args], ...(request.workingDir !== undefined ? { cwd: request.workingDir } : {}), env: request.env },
    { onSpawn, onError, onData, onExit, onClose },
  );
  let pid: number | undefined;
  try {
    pid = await child.started;
  } catch (error) {
    logStream.destroy();
    throw new LaunchError({
      code: 'run.spawn_failed',
      stage: 'run',
      message: `could not start "${command}": ${(error as Error).message}`,
      hint: "check the job's entry point and arguments",
      category: 'InvalidSpec',
      cause: error,
    });
  }

  function copy(status: RunStatus): RunStatus {
    return { ...status, messages: [...status.messages] };
  }

  function publish(next: RunStatus): void {
    if (RANK[next.state] < RANK[current.state]) return;
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

  function resume(): void {
    if (!paused) return;
    paused = false;
    child.resume();
  }

  function onData(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    // Back-pressure: a job that writes faster than the disk waits instead of filling our memory.
    if (!logBroken && !logStream.write(chunk) && !paused) {
      paused = true;
      child.pause();
      logStream.once('drain', resume);
    }
    tail.push(chunk);
    if (logListeners.size > 0) {
      const text = decoders[stream].write(chunk);
      if (text) emitLog({ stream, text });
    }
  }

  function onSpawn(): void {
    const pid = child.pid;
    logger.debug({ pid, command, argCount: entryArgs.length + request.args.length }, 'local process started');
    publish({ state: cancelled ? 'stopping' : 'running', messages: [] });
  }
  function onError(error: NodeJS.ErrnoException): void {
    const pid = child.pid;
    // Without a pid this is the spawn failing (ENOENT, EACCES) and 'close' follows.
    if (pid === undefined) spawnError ??= error;
    else logger.warn({ err: error, pid }, 'local process error');
  }
  function onExit(code: number | null, signal: NodeJS.Signals | null): void {
    exit = { code, signal };
    if (!closed) armDrain();
  }
  function onClose(code: number | null, signal: NodeJS.Signals | null): void {
    closed = true;
    if (drainTimer) clearTimeout(drainTimer);
    exit ??= { code, signal };
    void settle();
  }

  function armDrain(): void {
    if (closed || drainTimer) return;
    // While a cancel waits for its SIGKILL, stragglers are still expected to die; drain after that.
    if (cancelled && !killSent) return;
    drainTimer = setTimeout(() => child.destroyStdio(), STDIO_DRAIN_MS);
  }

  function escalate(): void {
    killTimer = undefined;
    if (pid === undefined) return;
    if (groupExists(pid)) {
      const result = signalGroup(pid, 'SIGKILL');
      if (result === 'sent' && !settled) {
        publish({
          state: 'stopping',
          messages: [`process group ${pid} did not exit within ${options.killGracePeriodMs} ms of SIGTERM; sent SIGKILL`],
        });
      }
      if (typeof result === 'object') logger.warn({ err: result.error, pid }, 'SIGKILL of the run process group failed');
    }
    killSent = true;
    if (exit && !closed) armDrain();
  }

  async function settle(): Promise<void> {
    if (settled) return;
    settled = true;
    await built;
    if (logListeners.size > 0) {
      for (const stream of ['stdout', 'stderr'] as const) {
        const text = decoders[stream].end();
        if (text) emitLog({ stream, text });
      }
    }
    logStream.end();
    // Wait for the file to be flushed so logs() after wait() holds the whole output.
    await finished(logStream).catch(() => undefined);
    // Keep the KILL timer only while stragglers of a cancelled run remain.
    if (killTimer && (pid === undefined || !groupExists(pid))) {
      clearTimeout(killTimer);
      killTimer = undefined;
    }
    const status = terminalStatus();
    publish(status);
    logger.debug({ pid, state: status.state, exitCode: status.exitCode }, 'local process ended');
    resolveWait(copy(status));
    options.onSettled(run);
  }

  function terminalStatus(): RunStatus {
    if (spawnError) return spawnFailure(spawnError, command, request.workingDir);
    const code = exit?.code ?? null;
    const signal = exit?.signal ?? null;
    const how = code !== null ? `exit code ${code}` : `signal ${signal ?? 'unknown'}`;
    if (cancelled) return { state: 'stopped', messages: [`process ${pid} stopped by cancel (${how})`], exitCode: code };
    if (code === 0) return { state: 'finished', messages: [], exitCode: 0 };
    const message = code !== null ? `process exited with code ${code}` : `process was killed by signal ${signal ?? 'unknown'}`;
    const diagnosis: Diagnosis = {
      category: 'NonZeroExit',
      message,
      hint:
        signal === 'SIGKILL'
          ? `something outside the agent killed the job (often the kernel's out-of-memory killer); see the log at ${logPath}`
          : `the job's own code failed; see the last lines of its log in ${logPath}`,
    };
    return { state: 'failed', messages: [message], exitCode: code, diagnosis, logTail: tail.text(options.logTailLines) };
  }

  const run: ProcessRun = {
    id: pid === undefined ? 'not-started' : String(pid),
    runId: request.runId,
    itemId: request.itemId,
    pid,
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
      if (cancelRequested || settled || pid === undefined) return;
      cancelRequested = true;
      // A job that already exited on its own keeps its own outcome; stragglers still get the signal.
      if (!exit) {
        cancelled = true;
        publish({ state: 'stopping', messages: ['cancel requested; sent SIGTERM to the process group'] });
      }
      const result = signalGroup(pid, 'SIGTERM');
      if (typeof result === 'object') logger.warn({ err: result.error, pid }, 'SIGTERM of the run process group failed');
      if (result !== 'gone') killTimer = setTimeout(escalate, options.killGracePeriodMs);
      else killSent = true;
    },
    killNow() {
      if (pid === undefined || (exit && !killTimer)) return;
      signalGroup(pid, 'SIGKILL');
    },
  };
  options.onStarted(run);
  markBuilt();
  return run;
}

function spawnFailure(error: NodeJS.ErrnoException, command: string, workingDir: string | undefined): RunStatus {
  const where = workingDir ? ` (working directory ${workingDir})` : '';
  if (error.code === 'EACCES') {
    const message = `could not start "${command}": permission denied${where}`;
    return {
      state: 'failed',
      messages: [message],
      exitCode: null,
      diagnosis: {
        category: 'PermissionDenied',
        message,
        hint: `make "${command}" an executable file (chmod +x) that the agent's user may run`,
      },
    };
  }
  const missing = error.code === 'ENOENT';
  const message = missing ? `could not start "${command}": command not found${where}` : `could not start "${command}": ${error.message}${where}`;
  return {
    state: 'failed',
    messages: [message],
    exitCode: null,
    diagnosis: {
      category: 'InvalidSpec',
      message,
      hint: missing
        ? `check the job's entry point: "${command}" must be an absolute path or a program on the PATH the run receives`
        : "check the job's entry point and the agent host",
    },
  };
}
