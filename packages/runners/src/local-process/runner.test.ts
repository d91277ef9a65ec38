import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, type LogChunk, type Logger, type RunRequest, type RunStatus, type SubmittedRun } from '@launch/core';
import { createLocalProcessRunner, type LocalProcessRunner } from './runner.js';
import { logFileName } from './log-file.js';

const run = promisify(execFile);
let logDir: string;
let workDir: string;
const runners: LocalProcessRunner[] = [];
let n = 0;

beforeAll(async () => {
  logDir = await mkdtemp(join(tmpdir(), 'launch-lp-logs-'));
  workDir = await realpath(await mkdtemp(join(tmpdir(), 'launch-lp-work-')));
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  await rm(logDir, { recursive: true, force: true });
  await rm(workDir, { recursive: true, force: true });
});

/** A logger that keeps every call, to prove what the runner does (and does not) log. */
function recordingLogger(): Logger & { records: unknown[] } {
  const records: unknown[] = [];
  const log = (level: string) => (obj: object | string, msg?: string) => void records.push({ level, obj, msg });
  return { records, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function makeRunner(options: Partial<Parameters<typeof createLocalProcessRunner>[0]> = {}): LocalProcessRunner {
  const runner = createLocalProcessRunner({ logDir, killGracePeriodMs: 5_000, ...options });
  runners.push(runner);
  return runner;
}

function request(overrides: Partial<RunRequest> = {}): RunRequest {
  n++;
  return {
    runId: `run-${n}`,
    itemId: `item-${n}-${process.pid}`,
    queue: 'default',
    agentName: 'test',
    spec: {},
    entryPoint: ['true'],
    args: [],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    resourceArgs: {},
    ...overrides,
  };
}

const sh = (script: string): Partial<RunRequest> => ({ entryPoint: ['sh', '-c', script] });
const ctx = (logger?: Logger) => ({ logger: logger ?? recordingLogger() });

/** Gone, or a zombie nobody reaps (this machine's pid 1 does not reap orphans). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .startsWith('Z');
  } catch {
    return true;
  }
}

async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with the accumulated output once it contains `text`. */
function waitForOutput(submitted: SubmittedRun, text: string): Promise<string> {
  let out = '';
  return new Promise((resolve) => {
    const off = submitted.onLog!((chunk) => {
      out += chunk.text;
      if (out.includes(text)) {
        off();
        resolve(out);
      }
    });
  });
}

describe('local-process runner', () => {
  it('validates its options, naming the field and suggesting the right key', () => {
    expect(() => createLocalProcessRunner({} as never)).toThrow(/logDir/);
    try {
      createLocalProcessRunner({ logDir, killGracePeriod: 5 } as never);
      expect.unreachable();
    } catch (error) {
      expect(LaunchError.isInstance(error)).toBe(true);
      expect((error as LaunchError).code).toBe('runner.invalid_options');
      expect((error as Error).message).toContain('did you mean "killGracePeriodMs"');
    }
    expect(() => createLocalProcessRunner({ logDir, killGracePeriodMs: -1 })).toThrow(/killGracePeriodMs/);
  });

  it('rejects an empty entry point with a hint', async () => {
    const error = await makeRunner()
      .run(request({ entryPoint: [] }), ctx())
      .catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'run.no_entry_point', stage: 'run' });
    expect((error as LaunchError).hint).toMatch(/entry_point/);
  });

  it("refuses an item that asks for an image, as W&B's local-process runner does, and starts nothing", async () => {
    const marker = join(logDir, `image-${Date.now()}`);
    const error = await makeRunner()
      .run(request({ image: 'ghcr.io/acme/train:1', entryPoint: ['sh', '-c', `touch ${marker}`] }), ctx())
      .catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'run.image_not_supported', stage: 'run', category: 'InvalidSpec' });
    expect((error as LaunchError).message).toContain('ghcr.io/acme/train:1');
    expect(existsSync(marker)).toBe(false);
  });

  it('passes args after the entry point verbatim, with no shell in between', async () => {
    const runner = makeRunner();
    const tricky = '$(echo injected); `id` && echo nope';
    const submitted = await runner.run(request({ entryPoint: ['printf', '%s|'], args: [tricky, 'b c'] }), ctx());
    await submitted.wait();
    expect(await submitted.logs()).toBe(`${tricky}|b c|`);
  });

  it('kills the whole process group on cancel, not just the top process', async () => {
    const runner = makeRunner();
    const submitted = await runner.run(request(sh('sleep 300 & echo "child=$!"; wait')), ctx());
    const out = await waitForOutput(submitted, '\n');
    const child = Number(/child=(\d+)/.exec(out)![1]);
    const parent = Number(submitted.id);
    expect(isGone(child)).toBe(false);
    await submitted.cancel();
    const status = await submitted.wait();
    expect(status.state).toBe('stopped');
    await until(() => isGone(parent) && isGone(child), 'parent and child to be gone');
  });

  it('SIGKILLs a job that ignores SIGTERM once the grace period is over', async () => {
    const runner = makeRunner({ killGracePeriodMs: 300 });
    const submitted = await runner.run(request(sh('trap "" TERM; echo ready; while :; do sleep 1; done')), ctx());
    const seen: RunStatus[] = [];
    submitted.onStatus((s) => seen.push(s));
    await waitForOutput(submitted, 'ready');
    const t0 = Date.now();
    await submitted.cancel();
    expect((await submitted.status()).state).toBe('stopping');
    const status = await submitted.wait();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(status.state).toBe('stopped');
    expect(status.messages.join(' ')).toContain('SIGKILL');
    expect(seen.some((s) => s.state === 'stopping' && s.messages.join(' ').includes('sent SIGKILL'))).toBe(true);
    await until(() => isGone(Number(submitted.id)), 'the job to be gone');
  });

  it('a command that does not exist fails the run cleanly, naming the command', async () => {
    const runner = makeRunner();
    const submitted = await runner.run(request({ entryPoint: ['no-such-command-launch-test', '--flag'] }), ctx());
    const status = await submitted.wait();
    expect(status.state).toBe('failed');
    expect(status.messages[0]).toContain('"no-such-command-launch-test"');
    expect(status.messages[0]).toContain('not found');
    expect(status.diagnosis).toMatchObject({ category: 'InvalidSpec' });
    expect(status.diagnosis!.hint).toContain('PATH');
    await submitted.cancel(); // harmless on a run that never started
  });

  it('a file that is not executable fails with PermissionDenied', async () => {
    const script = join(workDir, 'not-executable.sh');
    await writeFile(script, '#!/bin/sh\necho hi\n');
    await chmod(script, 0o644);
    const submitted = await makeRunner().run(request({ entryPoint: [script] }), ctx());
    const status = await submitted.wait();
    expect(status.state).toBe('failed');
    expect(status.diagnosis).toMatchObject({ category: 'PermissionDenied' });
    expect(status.diagnosis!.hint).toContain('chmod +x');
  });

  it('a job killed by a signal fails with the signal, not an exit code', async () => {
    const submitted = await makeRunner().run(request(sh('kill -KILL $$')), ctx());
    const status = await submitted.wait();
    expect(status).toMatchObject({ state: 'failed', exitCode: null });
    expect(status.messages[0]).toContain('SIGKILL');
    expect(status.diagnosis).toMatchObject({ category: 'NonZeroExit' });
    expect(status.diagnosis!.hint).toContain('out-of-memory');
  });

  it('a failed run carries the last lines of its output and the exit code', async () => {
    const runner = makeRunner({ logTailLines: 3 });
    const submitted = await runner.run(request(sh('for i in 1 2 3 4 5 6; do echo "line $i"; done; echo oops >&2; exit 7')), ctx());
    const status = await submitted.wait();
    expect(status).toMatchObject({ state: 'failed', exitCode: 7 });
    expect(status.messages).toEqual(['process exited with code 7']);
    expect(status.diagnosis).toMatchObject({ category: 'NonZeroExit', message: 'process exited with code 7' });
    expect(status.logTail).toBe('line 5\nline 6\noops');
  });

  it('writes stdout and stderr to <logDir>/<itemId>.log, appending across attempts', async () => {
    const runner = makeRunner();
    const itemId = `append-${process.pid}`;
    for (const attempt of [1, 2]) {
      const submitted = await runner.run(request({ itemId, ...sh(`echo "out ${attempt}"; echo "err ${attempt}" >&2`) }), ctx());
      await submitted.wait();
    }
    const file = await readFile(join(logDir, `${itemId}.log`), 'utf8');
    expect(file.split('\n').filter(Boolean).sort()).toEqual(['err 1', 'err 2', 'out 1', 'out 2']);
    expect(file.indexOf('out 1')).toBeLessThan(file.indexOf('out 2'));
  });

  it('keeps hostile item ids inside logDir', async () => {
    const runner = makeRunner();
    const itemId = `../../escape/${process.pid}/..`;
    const submitted = await runner.run(request({ itemId, entryPoint: ['echo', 'contained'] }), ctx());
    await submitted.wait();
    expect(await readdir(logDir)).toContain(logFileName(itemId));
    expect(logFileName(itemId)).not.toContain('/');
    expect(await submitted.logs()).toBe('contained\n');
    expect(logFileName('x'.repeat(1000)).length).toBeLessThanOrEqual(200);
  });

  it('caps logs() to maxLogTailBytes, cut at a line boundary', async () => {
    const runner = makeRunner({ maxLogTailBytes: 1024 });
    const submitted = await runner.run(request(sh('i=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done')), ctx());
    await submitted.wait();
    const logs = await submitted.logs();
    expect(logs.length).toBeLessThanOrEqual(1024);
    expect(logs.length).toBeGreaterThan(900);
    expect(logs.endsWith('line 499\n')).toBe(true);
    expect(logs.split('\n')[0]).toMatch(/^line \d+$/);
  });

  it('streams output to onLog listeners as it arrives, before the job ends', async () => {
    const runner = makeRunner();
    const submitted = await runner.run(request(sh('echo first; echo second >&2; sleep 300')), ctx());
    const chunks: LogChunk[] = [];
    submitted.onLog!((c) => chunks.push(c));
    await until(() => chunks.some((c) => c.stream === 'stderr' && c.text.includes('second')), 'stderr chunk');
    expect(
      chunks
        .filter((c) => c.stream === 'stdout')
        .map((c) => c.text)
        .join(''),
    ).toBe('first\n');
    expect((await submitted.status()).state).toBe('running');
    await submitted.cancel();
    expect((await submitted.wait()).state).toBe('stopped');
  });

  it('a throwing listener does not break the run', async () => {
    const submitted = await makeRunner().run(request({ entryPoint: ['echo', 'x'] }), ctx());
    submitted.onStatus(() => {
      throw new Error('listener bug');
    });
    submitted.onLog!(() => {
      throw new Error('listener bug');
    });
    expect((await submitted.wait()).state).toBe('finished');
  });

  it('runs in the requested working directory and rejects a missing one', async () => {
    const runner = makeRunner();
    const submitted = await runner.run(request({ entryPoint: ['pwd'], workingDir: workDir }), ctx());
    await submitted.wait();
    expect((await submitted.logs()).trim()).toBe(workDir);

    const error = await runner.run(request({ workingDir: join(workDir, 'missing') }), ctx()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'run.working_dir', stage: 'run' });
    expect((error as LaunchError).hint).toContain('working_dir');
  });

  it('gives the job exactly request.env', async () => {
    const submitted = await makeRunner().run(request({ entryPoint: ['/usr/bin/env'], env: { ONLY: 'this' } }), ctx());
    await submitted.wait();
    expect(await submitted.logs()).toBe('ONLY=this\n');
  });

  it('does not finish late when a background child keeps stdout open', async () => {
    const submitted = await makeRunner().run(request(sh('sleep 300 & echo "bg=$!"')), ctx());
    const status = await submitted.wait();
    expect(status.state).toBe('finished');
    const bg = Number(/bg=(\d+)/.exec(await submitted.logs())![1]);
    process.kill(bg, 'SIGKILL');
  });

  it('never logs environment values or puts them in statuses', async () => {
    const secret = 'sk-live-0123456789abcdef';
    const logger = recordingLogger();
    const runner = makeRunner({ killGracePeriodMs: 200, logger });
    const env = { PATH: process.env.PATH ?? '', WANDB_API_KEY: secret, OTHER_TOKEN: secret };
    const statuses: RunStatus[] = [];
    const jobs = [
      request({ env, entryPoint: ['true'] }),
      request({ env, ...sh('exit 4') }),
      request({ env, entryPoint: ['missing-command-with-secret-env'] }),
      request({ env, ...sh('trap "" TERM; while :; do sleep 1; done') }),
    ];
    for (const job of jobs) {
      const submitted = await runner.run(job, ctx(logger));
      submitted.onStatus((s) => statuses.push(s));
      if (job.entryPoint[0] === 'sh' && job.entryPoint[2]!.includes('trap')) await submitted.cancel();
      statuses.push(await submitted.wait());
    }
    expect(logger.records.length).toBeGreaterThan(0);
    expect(JSON.stringify(logger.records)).not.toContain(secret);
    expect(JSON.stringify(statuses)).not.toContain(secret);
  });

  it('close() stops every live run', async () => {
    const runner = createLocalProcessRunner({ logDir, killGracePeriodMs: 2_000 });
    const a = await runner.run(request({ entryPoint: ['sleep', '300'] }), ctx());
    const b = await runner.run(request({ entryPoint: ['sleep', '300'] }), ctx());
    await runner.close();
    expect((await a.status()).state).toBe('stopped');
    expect((await b.status()).state).toBe('stopped');
    await expect(runner.run(request(), ctx())).rejects.toMatchObject({ code: 'run.runner_closed' });
  });

  it('kills live runs when the agent process exits without cancelling them', async () => {
    // A real agent process: starts a long job, prints its pid, then exits abruptly.
    const script = join(workDir, 'agent-exit.mts');
    await writeFile(
      script,
      `import { createLocalProcessRunner } from ${JSON.stringify(join(import.meta.dirname, 'runner.ts'))};
const runner = createLocalProcessRunner({ logDir: ${JSON.stringify(logDir)} });
const run = await runner.run({ runId: 'r', itemId: 'exit-${process.pid}', queue: 'q', agentName: 'a', spec: {},
  entryPoint: ['sleep', '300'], args: [], env: { PATH: process.env.PATH ?? '' }, resourceArgs: {} }, { logger: console });
await new Promise((r) => run.onStatus((s) => s.state === 'running' && r(undefined)));
process.stdout.write(run.id + '\\n');
process.exit(0);
`,
    );
    const tsx = join(import.meta.dirname, '../../../../node_modules/.bin/tsx');
    const { stdout } = await run(tsx, ['--tsconfig', join(import.meta.dirname, '../../../../tsconfig.json'), script], {
      cwd: join(import.meta.dirname, '../../../..'),
    });
    const pid = Number(stdout.trim().split('\n').at(-1));
    expect(pid).toBeGreaterThan(0);
    await until(() => isGone(pid), 'the orphaned job to be killed');
  });
});
