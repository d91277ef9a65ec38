import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A daemon the test services started: stopped by its PID, its stderr and stdout kept in `logFile`. */
export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<string>;
  readonly running: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has ended. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Every daemon still alive, so that the process's `exit` hook can stop them if teardown never ran
 * (SIGTERM, so that dockerd still unmounts what it mounted; the reaper finishes the job).
 */
const alive = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of alive) {
      try {
        if (child.pid) process.kill(child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

/** Full path of an executable on PATH (plus the sbin directories root uses), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Starts `command` with stdout and stderr appended to `logFile`. */
export function startDaemon(name: string, command: string, args: string[], logFile: string): Daemon {
  installExitHook();
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: ['ignore', fd, fd], env: process.env });
  } finally {
    closeSync(fd);
  }
  alive.add(child);
  let running = true;
  const exited = new Promise<string>((resolve) => {
    const done = (how: string) => {
      running = false;
      alive.delete(child);
      resolve(how);
    };
    child.once('exit', (code, signal) => done(signal ? `signal ${signal}` : `exit code ${code}`));
    child.once('error', (error) => done(`spawn error: ${error.message}`));
  });
  const pid = child.pid ?? -1;
  return {
    name,
    pid,
    logFile,
    exited,
    get running() {
      return running;
    },
    async stop(graceMs = 10_000) {
      if (!running) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (running) child.kill('SIGKILL');
          resolve();
        }, graceMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      await exited;
    },
  };
}

/** The last `lines` lines of a log file, for an error message. */
export function logTail(logFile: string, lines = 15): string {
  try {
    const text = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** An error saying that `name` failed to start, with where its log is and the log's tail. */
export function startFailure(daemon: Pick<Daemon, 'name' | 'logFile'>, why: string): Error {
  return new Error(`${daemon.name} failed to start: ${why}. Its log is ${daemon.logFile}; last lines:\n${logTail(daemon.logFile)}`);
}

/**
 * Polls `check` until it returns a value, the daemon exits, or the deadline passes. Throws an error
 * naming the daemon and its log in the last two cases.
 */
export async function untilReady<T>(daemon: Daemon, what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  let delay = 20;
  for (;;) {
    if (!daemon.running) throw startFailure(daemon, `it exited (${await daemon.exited}) before ${what}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      throw startFailure(daemon, `no ${what} within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`);
    }
    const exitedOrTimer = Promise.race([daemon.exited, new Promise((r) => setTimeout(r, delay))]);
    await exitedOrTimer;
    delay = Math.min(delay * 2, 200);
  }
}

/** Mount points at or below `dir`, deepest first (read from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    // mountinfo escapes spaces and such as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts every mount left below `dir` (dockerd leaves `<exec-root>/netns/default` and its data root). */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  const umount = findBinary('umount');
  const failed: string[] = [];
  for (const point of mountsUnder(dir)) {
    if (!umount) {
      failed.push(point);
      continue;
    }
    try {
      await run(umount, [point]);
    } catch {
      try {
        await run(umount, ['-l', point]);
      } catch {
        failed.push(point);
      }
    }
  }
  return failed;
}

/**
 * PIDs of processes whose command line mentions `marker` (a unique temp directory of ours): the
 * children a daemon started, such as dockerd's containerd and its shims, which outlive a SIGKILLed parent.
 */
export function pidsMentioning(marker: string): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) out.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
