import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, sandbox, waitFor, type Result, type Sandbox } from '../helpers.js';

/** A reader's shell: a working directory, a private HOME and state dir, and `launch-agent` on PATH. */
export interface DocShell extends Sandbox {
  /** The working directory the commands run in (`<sandbox>/work`). */
  cwd: string;
}

/**
 * A sandbox whose PATH starts with a `launch-agent` script around the built binary, as the README
 * says: "The examples call the built binary as `launch-agent`".
 */
export async function docShell(): Promise<DocShell> {
  const box = await sandbox();
  const bin = join(box.dir, 'bin');
  const cwd = join(box.dir, 'work');
  await mkdir(bin, { recursive: true });
  await mkdir(cwd, { recursive: true });
  const wrapper = join(bin, 'launch-agent');
  await writeFile(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  await chmod(wrapper, 0o755);
  return { ...box, cwd, env: { ...box.env, PATH: `${bin}:${box.env.PATH}` } };
}

export interface ShellRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Result>;
  /** Ctrl-C: SIGINT to the command's process group, as a terminal sends it. */
  interrupt(): void;
  /** SIGKILL to the command's process group. */
  kill(): void;
}

/**
 * The reader's shell. bash, not dash: on Ctrl-C a terminal signals the foreground job's process group,
 * and the interactive shell survives; dash `-c` dies of the SIGINT its child handled, bash waits and
 * exits with the child's status (and runs a lone command with exec anyway).
 */
const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

/** Starts `command` with `bash -c` in the shell's directory, in its own process group. */
export function startShell(shell: DocShell, command: string, extraEnv: Record<string, string> = {}): ShellRun {
  const child = spawn(SHELL, ['-c', command], { cwd: shell.cwd, env: { ...shell.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Result>((resolveExit) => child.on('close', (code, signal) => resolveExit({ code, signal, stdout, stderr })));
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  return { child, stdout: () => stdout, stderr: () => stderr, exited, interrupt: () => group('SIGINT'), kill: () => group('SIGKILL') };
}

/** Runs `command` to completion; past `timeoutMs` its process group is killed (and the result says so). */
export async function runShell(shell: DocShell, command: string, timeoutMs = 45_000, extraEnv: Record<string, string> = {}): Promise<Result> {
  return exitWithin(startShell(shell, command, extraEnv), timeoutMs);
}

/** The run's result; past `timeoutMs` its process group is killed (and the result says so). */
async function exitWithin(run: ShellRun, timeoutMs: number): Promise<Result> {
  const timer = setTimeout(run.kill, timeoutMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bounded run of a command that serves until Ctrl-C: started, `ready` awaited (with a deadline),
 * `during` run while it serves, then SIGINT. Returns its result; the caller checks the exit status.
 * A command that does not get ready, or exits early, fails with its output.
 */
export async function serveBounded(
  shell: DocShell,
  command: string,
  ready: (run: ShellRun) => boolean | Promise<boolean>,
  during: (run: ShellRun) => Promise<void> = async () => {},
  timeoutMs = 40_000,
): Promise<Result> {
  const run = startShell(shell, command);
  let exitedEarly: Result | undefined;
  void run.exited.then((r) => (exitedEarly = r));
  try {
    let outcome: 'ready' | 'exited';
    try {
      outcome = await waitFor(async () => (exitedEarly ? 'exited' : (await ready(run)) ? 'ready' : undefined), {
        what: `"${command}" to be ready`,
        timeoutMs,
        intervalMs: 50,
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\nstderr so far:\n${run.stderr()}`);
    }
    if (outcome === 'exited') throw new Error(`"${command}" exited (${exitedEarly!.code ?? exitedEarly!.signal}) before it was ready:\n${exitedEarly!.stderr}`);
    await during(run);
  } catch (error) {
    run.kill();
    await run.exited;
    throw error;
  }
  run.interrupt();
  return exitWithin(run, timeoutMs);
}
