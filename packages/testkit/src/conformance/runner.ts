import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchError, isTerminal, type Runner, type RunRequest, type RunState, type RunStatus, type SubmittedRun } from '@launch/core';

/** What a job runs: the entry point and arguments that make it do one thing on a given backend. */
export interface RunnerCommand {
  entryPoint: string[];
  args: string[];
}

/**
 * Jobs the suite needs, expressed for the backend under test (a shell command locally, a scripted
 * container for the Kubernetes test server, …).
 */
export interface RunnerCommands {
  /** Exits 0. */
  succeed(): RunnerCommand;
  /** Exits with `exitCode` (1..125). */
  fail(exitCode: number): RunnerCommand;
  /** Runs for `seconds` unless stopped. */
  sleep(seconds: number): RunnerCommand;
  /** Prints the value of the environment variable `name` followed by a newline. */
  printEnv(name: string): RunnerCommand;
  /** Prints `text` followed by a newline. */
  echo(text: string): RunnerCommand;
}

/** What a backend can report, so the suite asks only for what the backend can know. */
export interface RunnerConformanceFlags {
  /** A cancelled run ends `stopped`; false when the backend cannot tell a cancel from a failure (`failed`). Default true. */
  reportsStopped?: boolean;
  /** Runs report their exit code. Default true. */
  reportsExitCode?: boolean;
}

export interface RunnerFixture {
  runner: Runner;
  /** A valid request (fresh ids) with `overrides` applied; its env carries what the backend needs (PATH, …). */
  request(overrides?: Partial<RunRequest>): RunRequest;
  commands: RunnerCommands;
  flags?: RunnerConformanceFlags;
  /** Requests this backend must reject besides the generic malformed ones. */
  invalidRequests?: Array<{ name: string; request: RunRequest }>;
  /** Upper bound for any single wait in the suite. Default 30 000 ms. */
  timeoutMs?: number;
  cleanup?(): Promise<void> | void;
}

/** Progress of a state: the live states in order, every terminal state last. */
const LIVE_ORDER: RunState[] = ['unknown', 'starting', 'running', 'stopping'];
const rank = (state: RunState) => (isTerminal(state) ? LIVE_ORDER.length : LIVE_ORDER.indexOf(state));

const ctx = () => ({ logger: { debug() {}, info() {}, warn() {}, error() {} } });

/**
 * The Runner contract, checked against one backend (unstorage's `testDriver()` pattern). Call it in a
 * test file: `describeRunner('local-process', async () => ({ runner, request, commands, cleanup }))`.
 */
export function describeRunner(name: string, setup: () => Promise<RunnerFixture> | RunnerFixture): void {
  describe(`Runner conformance: ${name}`, () => {
    let fx!: RunnerFixture;
    let flags!: Required<RunnerConformanceFlags>;
    let timeoutMs = 30_000;
    const started: SubmittedRun[] = [];

    beforeAll(async () => {
      fx = await setup();
      flags = { reportsStopped: true, reportsExitCode: true, ...fx.flags };
      timeoutMs = fx.timeoutMs ?? timeoutMs;
    });

    afterAll(async () => {
      // Never leave a job behind, even when a check failed half-way.
      await Promise.all(started.map((run) => run.cancel().catch(() => undefined)));
      await fx?.cleanup?.();
    });

    let counter = 0;
    const ids = () => {
      const id = `conf-${++counter}-${randomBytes(4).toString('hex')}`;
      return { runId: id, itemId: `item-${id}` };
    };

    async function submit(command: RunnerCommand, env?: Record<string, string>): Promise<SubmittedRun> {
      const base = fx.request({ ...ids(), ...command });
      const request = env ? { ...base, env: { ...base.env, ...env } } : base;
      const run = await fx.runner.run(request, ctx());
      started.push(run);
      return run;
    }

    function within<T>(promise: Promise<T>, what: string): Promise<T> {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      });
      return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
    }

    function untilState(run: SubmittedRun, states: RunState[]): Promise<RunStatus> {
      return within(
        new Promise<RunStatus>((resolve) => {
          const off = run.onStatus((s) => {
            if (states.includes(s.state) || isTerminal(s.state)) {
              off();
              resolve(s);
            }
          });
          void run.status().then((s) => {
            if (states.includes(s.state) || isTerminal(s.state)) {
              off();
              resolve(s);
            }
          });
        }),
        `state ${states.join(' or ')}`,
      );
    }

    it('declares its contract version, name, resources and capabilities', () => {
      expect(fx.runner.specificationVersion).toBe('v1');
      expect(fx.runner.name).toMatch(/\S/);
      expect(fx.runner.resources.length).toBeGreaterThan(0);
      for (const key of ['adopt', 'remote', 'needsImage'] as const) {
        expect(typeof fx.runner.capabilities[key]).toBe('boolean');
      }
      expect(typeof fx.runner.capabilities.adopt === 'boolean' && (!fx.runner.capabilities.adopt || fx.runner.adopt)).toBeTruthy();
    });

    it('a succeeding job ends finished and wait() resolves with that status', async () => {
      const run = await submit(fx.commands.succeed());
      expect(run.id).toMatch(/\S/);
      const status = await within(run.wait(), 'wait()');
      expect(status.state).toBe('finished');
      if (flags.reportsExitCode) expect(status.exitCode).toBe(0);
      expect((await run.status()).state).toBe('finished');
      // wait() keeps answering after the end.
      expect((await within(run.wait(), 'a second wait()')).state).toBe('finished');
    });

    it('a failing job ends failed with its exit code and a diagnosis', async () => {
      const run = await submit(fx.commands.fail(3));
      const status = await within(run.wait(), 'wait()');
      expect(status.state).toBe('failed');
      if (flags.reportsExitCode) expect(status.exitCode).toBe(3);
      expect(status.diagnosis?.category).toMatch(/\S/);
      expect(status.diagnosis?.message).toMatch(/\S/);
      expect(status.diagnosis?.hint).toMatch(/\S/);
      expect(status.messages.length).toBeGreaterThan(0);
    });

    it('status listeners see a non-decreasing sequence that ends in the terminal state', async () => {
      const run = await submit(fx.commands.echo('sequence'));
      const seen: RunState[] = [];
      run.onStatus((s) => seen.push(s.state));
      const final = await within(run.wait(), 'wait()');
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.at(-1)).toBe(final.state);
      for (let i = 1; i < seen.length; i++) expect(rank(seen[i]!)).toBeGreaterThanOrEqual(rank(seen[i - 1]!));
      expect(seen.filter((s) => isTerminal(s))).toEqual([final.state]);
    });

    it('an unsubscribed status listener is not called again', async () => {
      const run = await submit(fx.commands.succeed());
      let calls = 0;
      const off = run.onStatus(() => calls++);
      off();
      await within(run.wait(), 'wait()');
      expect(calls).toBe(0);
    });

    it('cancel() of a running job ends it stopped, and cancel() is idempotent', async () => {
      const run = await submit(fx.commands.sleep(300));
      const reached = await untilState(run, ['running']);
      expect(reached.state).toBe('running');
      await Promise.all([run.cancel(), run.cancel()]);
      const status = await within(run.wait(), 'wait() after cancel');
      expect(status.state).toBe(flags.reportsStopped ? 'stopped' : 'failed');
      await run.cancel(); // after the end: still no error
      expect((await run.status()).state).toBe(status.state);
    });

    it('cancel() right after submission stops the job', async () => {
      const run = await submit(fx.commands.sleep(300));
      await run.cancel();
      const status = await within(run.wait(), 'wait() after an early cancel');
      expect(status.state).toBe(flags.reportsStopped ? 'stopped' : 'failed');
    });

    it('cancel() after the job finished keeps its outcome', async () => {
      const run = await submit(fx.commands.succeed());
      await within(run.wait(), 'wait()');
      await run.cancel();
      expect((await run.status()).state).toBe('finished');
    });

    it('the environment reaches the job', async () => {
      const value = `conformance-${randomBytes(6).toString('hex')}`;
      const run = await submit(fx.commands.printEnv('LAUNCH_CONFORMANCE_VALUE'), { LAUNCH_CONFORMANCE_VALUE: value });
      const status = await within(run.wait(), 'wait()');
      expect(status.state).toBe('finished');
      expect(await run.logs()).toContain(value);
    });

    it('logs contain the job output, streamed to onLog listeners when the backend streams', async () => {
      const text = `hello from ${name} ${randomBytes(4).toString('hex')}`;
      const run = await submit(fx.commands.echo(text));
      let streamed = '';
      run.onLog?.((chunk) => {
        expect(['stdout', 'stderr']).toContain(chunk.stream);
        streamed += chunk.text;
      });
      await within(run.wait(), 'wait()');
      expect(await run.logs()).toContain(text);
      if (run.onLog) expect(streamed).toContain(text);
    });

    it('runs many jobs at once', async () => {
      const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => submit(i % 2 ? fx.commands.succeed() : fx.commands.fail(2))));
      const states = await within(Promise.all(runs.map((r) => r.wait())), 'eight jobs');
      expect(states.map((s) => s.state)).toEqual(runs.map((_, i) => (i % 2 ? 'finished' : 'failed')));
    });

    it('run() rejects a malformed request with a LaunchError (stage run)', async () => {
      const valid = () => fx.request({ ...ids(), ...fx.commands.succeed() });
      const cases: Array<{ name: string; request: RunRequest }> = [
        { name: 'env value not a string', request: { ...valid(), env: { ...valid().env, BAD: 42 as unknown as string } } },
        { name: 'entry point not a list', request: { ...valid(), entryPoint: 'echo hi' as unknown as string[] } },
        { name: 'args not strings', request: { ...valid(), args: [{}] as unknown as string[] } },
        { name: 'empty item id', request: { ...valid(), itemId: '' } },
        ...(fx.invalidRequests ?? []),
      ];
      for (const c of cases) {
        const error = await fx.runner.run(c.request, ctx()).then(
          (run) => {
            started.push(run);
            return new Error(`accepted: ${c.name}`);
          },
          (e: unknown) => e,
        );
        expect(LaunchError.isInstance(error), `${c.name}: ${String(error)}`).toBe(true);
        expect((error as LaunchError).stage, c.name).toBe('run');
      }
    });

    it('a rejected request never echoes environment values', async () => {
      const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
      const request = { ...fx.request({ ...ids(), ...fx.commands.succeed() }) };
      request.env = { ...request.env, WANDB_API_KEY: secret, BROKEN: { secret } as unknown as string };
      const error = await fx.runner.run(request, ctx()).then(
        () => new Error('accepted'),
        (e: unknown) => e,
      );
      expect(LaunchError.isInstance(error)).toBe(true);
      expect(String((error as Error).message)).not.toContain(secret);
      expect(JSON.stringify(error)).not.toContain(secret);
    });
  });
}
