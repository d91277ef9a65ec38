import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export { waitFor } from '@launch/testkit';

/** The built binary: tests run what users run (`pnpm test` builds first). */
export const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../dist/cli.js');

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx -y pnpm@10 build" first (pnpm test does)`);
}

export interface Sandbox {
  dir: string;
  stateDir: string;
  home: string;
  /** A clean environment: a private HOME (no stray launch-config.yaml), the state dir, no colours. */
  env: Record<string, string>;
}

export async function sandbox(extraEnv: Record<string, string> = {}): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'launch-agent-it-'));
  const home = join(dir, 'home');
  const stateDir = join(dir, 'state');
  await mkdir(home, { recursive: true });
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LAUNCH_STATE_DIR: stateDir, NO_COLOR: '1', ...extraEnv };
  return { dir, stateDir, home, env };
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Result>;
}

/** Starts the binary with `args`; output is collected as it comes. */
export function start(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Result>((resolveExit) => {
    child.on('close', (code, signal) => resolveExit({ code, signal, stdout, stderr }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs the binary to completion, killing it past `timeoutMs`. */
export async function cli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Result> {
  const run = start(args, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** Whether a process (or with a negative id, a process group) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A `node -e` command line for a job. */
export function nodeJob(script: string): string[] {
  return [process.execPath, '-e', script];
}

export interface StatusJson {
  items: {
    id: string;
    queue: string;
    state: string;
    runId?: string;
    exitCode?: number | null;
    failure?: { stage: string; message: string };
    attempts: number;
    requeuedFrom?: string;
    warnings: unknown[];
  }[];
  agents: { id: string; status: string; pid: number }[];
}

export async function status(env: Record<string, string>): Promise<StatusJson> {
  const r = await cli(['status', '--json'], env);
  if (r.code !== 0) throw new Error(`status failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}
