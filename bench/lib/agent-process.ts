import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { wallMs } from './clock.js';
import { repoRoot } from './results.js';

/** One JSON progress line of the agent, with when the bench process read it. */
export interface AgentEvent {
  event: string;
  /** The agent's own timestamp (ms since the epoch, millisecond resolution). */
  time: number;
  /** When the bench process read the line (ms since the epoch, sub-millisecond). */
  readAt: number;
  item?: string;
  exitCode?: number | null;
  [key: string]: unknown;
}

export interface AgentProcessOptions {
  stateDir: string;
  /** `max_jobs`; -1 for no limit. */
  maxJobs: number;
  /**
   * `binary`: the real CLI (`node examples/agent/dist/cli.js`). `library`: bench/lib/library-agent.mjs,
   * the built `@launch/core` and `@launch/runners` wired the same way but with `fsync` selectable.
   */
  kind?: 'binary' | 'library';
  /** Library kind only: the embedded queue's fsync option (the binary always uses the default, true). */
  fsync?: boolean;
  exitWhenIdle?: boolean;
  /** Extra `node` flags (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  cwd?: string;
}

export interface AgentProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Every progress line so far, in order. */
  readonly events: AgentEvent[];
  count(event: string): number;
  /** Resolves with the first event (past or future) that matches; rejects on timeout or exit. */
  waitFor(match: (e: AgentEvent) => boolean, timeoutMs: number, what: string): Promise<AgentEvent>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM (a clean stop), then waits for the exit; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** The last non-JSON lines the process wrote (for error messages). */
  otherOutput(): string;
}

export const cliPath = join(repoRoot, 'examples/agent/dist/cli.js');
const libraryAgentPath = join(repoRoot, 'bench/lib/library-agent.mjs');

/** Starts an agent process on the embedded queue at `stateDir`, following its JSON progress lines. */
export function startAgentProcess(options: AgentProcessOptions): AgentProcess {
  const kind = options.kind ?? 'binary';
  const args =
    kind === 'binary'
      ? [
          cliPath,
          'run',
          '--source',
          'embedded',
          '--state-dir',
          options.stateDir,
          '--max-jobs',
          String(options.maxJobs),
          '--log-format',
          'json',
          ...(options.exitWhenIdle ? ['--exit-when-idle'] : []),
        ]
      : [libraryAgentPath];
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  // The embedded queue, whatever W&B settings the machine has.
  for (const key of Object.keys(env)) if (key.startsWith('WANDB_')) delete env[key];
  if (kind === 'library') {
    Object.assign(env, {
      BENCH_STATE_DIR: options.stateDir,
      BENCH_MAX_JOBS: String(options.maxJobs),
      BENCH_FSYNC: options.fsync === false ? '0' : '1',
      BENCH_EXIT_WHEN_IDLE: options.exitWhenIdle ? '1' : '0',
    });
  }
  // BENCH_CPU_PROF=<dir>: every agent process writes a V8 CPU profile there when it exits.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const child = spawn(process.execPath, [...profile, ...(options.nodeArgs ?? []), ...args], {
    cwd: options.cwd ?? repoRoot,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const events: AgentEvent[] = [];
  const counts = new Map<string, number>();
  const other: string[] = [];
  const waiters = new Set<{ match: (e: AgentEvent) => boolean; resolve: (e: AgentEvent) => void }>();
  createInterface(child.stderr!).on('line', (line) => {
    const readAt = wallMs();
    let parsed: Record<string, unknown> | undefined;
    if (line.startsWith('{')) {
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = undefined;
      }
    }
    if (!parsed || typeof parsed.event !== 'string') {
      other.push(line);
      if (other.length > 50) other.shift();
      return;
    }
    const e = { ...parsed, event: parsed.event, time: Date.parse(String(parsed.time)), readAt } as AgentEvent;
    events.push(e);
    counts.set(e.event, (counts.get(e.event) ?? 0) + 1);
    for (const w of [...waiters]) {
      if (w.match(e)) {
        waiters.delete(w);
        w.resolve(e);
      }
    }
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
  });
  const describeOther = () => other.slice(-10).join('\n');

  return {
    pid: child.pid!,
    child,
    events,
    count: (event) => counts.get(event) ?? 0,
    waitFor(match, timeoutMs, what) {
      const past = events.find(match);
      if (past) return Promise.resolve(past);
      if (exitCode !== undefined) return Promise.reject(new Error(`agent exited (${exitCode}) before ${what}\n${describeOther()}`));
      return new Promise<AgentEvent>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (e: AgentEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}\n${describeOther()}`));
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then((code) => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(new Error(`agent exited (${code}) before ${what}\n${describeOther()}`));
        });
      });
    },
    exited,
    async stop(graceMs = 15_000) {
      if (exitCode !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    otherOutput: describeOther,
  };
}
