import { randomBytes } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QueueItem } from '../contracts/queue-source.js';
import type { CallContext } from '../contracts/common.js';
import type { RunRequest, RunStatus, Runner, SubmittedRun } from '../contracts/runner.js';
import { LaunchError, toLaunchError, type Stage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Redactor, RedactorScope } from '../redact.js';
import { isSchedulerSpec, normalizeLaunchSpec, specImage, type LaunchSpec } from '../spec.js';
import { isTerminal, type RunState } from '../status.js';
import type { TypedEmitter } from './emitter.js';
import type { ResolvedOptions } from './options.js';
import { planRun } from '../plan-run.js';
import type { BuildRequest } from '../contracts/builder.js';
import { prepareJobRun, resolveJob, type PreparedRun } from './job-code.js';

/** What the agent knows about one job while it holds a slot. */
export interface JobTracker {
  item: QueueItem;
  runId?: string;
  state: RunState;
  scheduler: boolean;
  startedAt: number;
  backendId?: string;
  runner?: Runner;
  submitted?: SubmittedRun;
  /** Set on agent shutdown: `cancel` local runs, `detach` from remote ones. */
  shutdown?: 'cancel' | 'detach';
  /** A sweep scheduler acked while `max_schedulers` run, waiting for one of them to end. */
  waitingForSlot?: boolean;
  /** Wakes the job's monitor (shutdown, stop request). */
  poke?: () => void;
  /** Undone when the job ends (a run's private copy of its code). */
  cleanups?: (() => Promise<void>)[];
  /** Aborted when the agent stops: cancels a build or a submission still in flight. */
  abort?: AbortController;
  /** The job's secrets (from its spec): redacted while the agent tracks the job, released when it stops. */
  secrets?: RedactorScope;
}

export interface JobContext {
  opts: ResolvedOptions;
  emitter: TypedEmitter;
  redactor: Redactor;
  agentName: string;
  logger: Logger;
  /**
   * Resolves when this scheduler job may start under `max_schedulers` (at once when a slot is free),
   * or when the agent shuts down.
   */
  schedulerSlot(job: JobTracker): Promise<void>;
}

/** W&B run ids: 8 characters of lower-case letters and digits. */
export function generateRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(8);
  let id = '';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}

/**
 * One job from claim to report: validate → ack → build → submit → monitor → report.
 * Never throws: every failure is reported to the source with its stage, and the slot is released by the caller.
 */
export async function runJob(ctx: JobContext, job: JobTracker): Promise<void> {
  const { opts, emitter, redactor } = ctx;
  const { item } = job;
  const log = ctx.logger;
  // Learn the job's secrets before any line about it is written; the agent releases them when the job ends.
  (job.secrets ??= redactor.scope(item.id)).addSpecSecrets(item.spec);
  emitter.emit('item:claimed', { item });
  log.info({ itemId: item.id, queue: item.queue, spec: redactor.redactValue(item.spec) }, 'claimed queue item');
  let parsed: LaunchSpec | undefined;
  try {
    // W&B's legacy flat resource_args forms are converted, each conversion reported as a warning on the item.
    const { spec, warnings: specWarnings } = normalizeLaunchSpec(item.spec);
    for (const w of specWarnings) {
      opts.source.warn(item, { stage: 'agent', message: `${w.path}: ${w.message}` }).catch((e: unknown) => agentError(ctx, e, 'warn'));
    }
    parsed = spec;
    job.scheduler = isSchedulerSpec(spec);
    if (opts.secureMode && spec.overrides?.entry_point && spec.overrides.entry_point.length > 0) {
      throw new LaunchError({
        code: 'spec.secure_mode',
        message: 'overrides.entry_point is not allowed: the agent runs in secure_mode',
        hint: 'remove overrides.entry_point from the job, or turn secure_mode off on the agent',
      });
    }
    // An item whose earlier claim acked it and was lost keeps that claim's run id: its run may exist.
    const runId = item.previousRun?.runId ?? spec.run_id ?? generateRunId();
    job.runId = runId;
    const resource = spec.resource ?? opts.defaultResource;
    const runner = opts.runners.find((r) => r.resources.includes(resource));
    if (!runner) {
      const known = opts.runners.flatMap((r) => r.resources).join(', ');
      throw new LaunchError({
        code: 'spec.unknown_resource',
        message: `no runner handles resource "${resource}" (this agent runs: ${known})`,
        hint: "set the job's `resource` to one this agent runs, or configure a runner for it",
      });
    }
    job.runner = runner;

    await opts.source.ack(item, runId);
    if (job.scheduler && !job.shutdown) {
      // W&B leaves a surplus scheduler item popped but un-acked until the server's claim expires (~1 min),
      // and a source without `release` cannot take it back: claim it and wait for a scheduler slot here.
      await ctx.schedulerSlot(job);
    }
    if (job.shutdown) {
      // The agent began shutting down: hand the item back (requeued as stopped), don't build or start it.
      await report(ctx, job, spec, { state: 'stopped', messages: [] });
      return;
    }

    // A lost claim's remote run may still be going, or have ended while no agent watched: follow it, never
    // start a second one. A local run died with its agent (the orphan guard kills it), so it runs again.
    const attachOnly = item.previousRun !== undefined && runner.capabilities.remote;
    if (attachOnly && !(runner.capabilities.adopt && runner.adopt))
      throw outcomeLost(item, runId, `the ${runner.name} runner cannot find runs it started earlier`);
    // A W&B job is read and its code fetched first (W&B's fetch_and_validate_project); then the image is decided.
    const resolvedJob = attachOnly ? undefined : await resolveJob(ctx, job, spec, runId);
    const built: PreparedRun = resolvedJob
      ? await prepareJobRun(ctx, job, spec, resolvedJob, runner, resource, (s, extra) => resolveImage(ctx, job, s, runId, extra)).finally(() =>
          // The code was copied for the run or built into an image: the resolver's cache may evict it again.
          ctx.opts.jobResolver?.release?.(resolvedJob),
        )
      : attachOnly || !runner.capabilities.needsImage
        ? { image: specImage(spec) }
        : await resolveImage(ctx, job, spec, runId);
    const request = buildRequest(ctx, spec, { runId, item, image: built.image, entryPoint: built.entryPoint, resource, runner });
    if (built.args) request.args = built.args;
    if (built.workingDir !== undefined) request.workingDir = built.workingDir;
    if (built.code) request.code = built.code;
    if (attachOnly) request.attachOnly = true;
    if (job.shutdown) {
      // The agent began shutting down while this job was being prepared: hand it back, don't start it.
      await report(ctx, job, spec, { state: 'stopped', messages: [] });
      return undefined;
    }
    job.submitted = await submit(runner, request, { logger: log, signal: job.abort?.signal });
    job.backendId = job.submitted.id;
    emitter.emit('run:submitted', { item, runId, runner: runner.name, backendId: job.submitted.id });
    log.info({ itemId: item.id, runId, runner: runner.name, backendId: job.submitted.id }, 'run submitted');

    const status = await monitor(ctx, job, job.submitted, spec);
    if (status) await report(ctx, job, spec, status);
  } catch (error) {
    if (parsed && job.shutdown && job.abort?.signal.aborted && !job.submitted) {
      // The stop cancelled a build or a submission: hand the item back, as for any job the stop caught early.
      await report(ctx, job, parsed, { state: 'stopped', messages: [] });
      return;
    }
    await failAndRelease(ctx, job, toLaunchError(error, { code: 'agent.error', stage: 'agent' }));
  } finally {
    for (const undo of job.cleanups?.splice(0) ?? []) await undo().catch((e: unknown) => agentError(ctx, e, 'cleanup'));
  }
}

/** Follows a run adopted after a restart (already acked and submitted) to its end, then reports it. */
export async function followAdoptedRun(ctx: JobContext, job: JobTracker): Promise<void> {
  const run = job.submitted!;
  try {
    const parsed = normalizeLaunchSpec(job.item.spec ?? {}).spec;
    const status = await monitor(ctx, job, run, parsed);
    if (status) await report(ctx, job, parsed, status);
  } catch (error) {
    await failAndRelease(ctx, job, toLaunchError(error, { code: 'agent.error', stage: 'agent' }));
  }
}

function outcomeLost(item: QueueItem, runId: string, why: string): LaunchError {
  return new LaunchError({
    code: 'run.outcome_lost',
    stage: 'run',
    message: `the outcome of run ${runId} is lost: an earlier claim of this item started it and its agent died (${why}); not starting it again`,
    hint: 'check the backend for the run (it may have finished or still be running) and enqueue the job again if it must run',
  });
}

/**
 * The job's code directory when its `uri` names one on this machine (`file:///abs/dir` or `/abs/dir`), for
 * sources that allow it (`capabilities.localCode`); undefined for other uris (git, none).
 */
async function localCodeDir(ctx: JobContext, spec: LaunchSpec): Promise<string | undefined> {
  const uri = spec.uri ?? '';
  let dir: string | undefined;
  if (uri.startsWith('file://')) {
    try {
      dir = fileURLToPath(uri);
    } catch {
      throw new LaunchError({
        code: 'spec.invalid_uri',
        stage: 'agent',
        message: `uri "${uri}" is not a valid file URL`,
        hint: 'give the code directory as file:///absolute/path',
      });
    }
  } else if (isAbsolute(uri)) dir = uri;
  if (!dir) return undefined;
  if (!ctx.opts.source.capabilities.localCode) {
    throw new LaunchError({
      code: 'build.local_code_refused',
      stage: 'build',
      category: 'BuildFailed',
      message: `the job's uri names a directory on the agent's machine (${dir}), but its queue (${ctx.opts.source.name}) is not local to this machine`,
      hint: 'give the job an image, or code from a git repository or a W&B job; local directories are taken only from the embedded queue',
    });
  }
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new LaunchError({
      code: 'build.no_code_dir',
      stage: 'build',
      category: 'BuildFailed',
      message: `the job's code directory ${dir} (uri) does not exist on this machine or is not a directory`,
      hint: 'enqueue with --context DIR from the machine the agent runs on',
    });
  }
  return dir;
}

/** The job's image: the spec's, or one the builder built (with the entry point it chose, when it chose one). */
async function resolveImage(
  ctx: JobContext,
  job: JobTracker,
  spec: LaunchSpec,
  runId: string,
  fromJob?: Pick<BuildRequest, 'contextDir' | 'job'>,
): Promise<{ image: string; entryPoint?: string[] }> {
  const direct = specImage(spec);
  if (direct) return { image: direct };
  const { opts, emitter } = ctx;
  if (!opts.builder) {
    throw new LaunchError({
      code: 'build.no_builder',
      stage: 'build',
      category: 'BuildFailed',
      message: 'the job has no image and the agent has no builder',
      hint: 'set builder.type (docker or kaniko) in launch-config.yaml, or give the job an image (docker.docker_image)',
    });
  }
  const contextDir = fromJob?.contextDir ?? (await localCodeDir(ctx, spec));
  emitter.emit('build:started', { item: job.item, runId });
  try {
    const result = await opts.builder.build(
      {
        spec,
        runId,
        itemId: job.item.id,
        ...(contextDir ? { contextDir } : {}),
        ...(fromJob?.job ? { job: fromJob.job } : {}),
        registry: opts.registry,
        contextStore: opts.contextStore,
        onProgress: (line) => emitter.emit('build:progress', { item: job.item, runId, line: ctx.redactor.redact(line) }),
        onWarning: (message) => {
          const text = ctx.redactor.redact(message);
          emitter.emit('run:warning', { item: job.item, runId, message: text });
          opts.source.warn(job.item, { stage: 'build', message: text }).catch((e: unknown) => agentError(ctx, e, 'warn'));
        },
      },
      { logger: ctx.logger, signal: job.abort?.signal },
    );
    emitter.emit('build:finished', { item: job.item, runId, imageUri: result.imageUri, cached: result.cached });
    return { image: result.imageUri, ...(result.entryPoint && result.entryPoint.length > 0 ? { entryPoint: result.entryPoint } : {}) };
  } catch (error) {
    throw toLaunchError(error, { code: 'build.failed', stage: 'build' });
  }
}

function buildRequest(
  ctx: JobContext,
  spec: LaunchSpec,
  j: { runId: string; item: QueueItem; image?: string; entryPoint?: string[]; resource: string; runner: Runner },
): RunRequest {
  // One place builds what a runner gets, so the dry run (`launch-agent check`) shows exactly this.
  return planRun(spec, {
    runId: j.runId,
    item: j.item,
    image: j.image,
    entryPoint: j.entryPoint,
    resource: j.resource,
    runner: j.runner,
    agentName: ctx.agentName,
    env: ctx.opts.env,
    entity: ctx.opts.entity,
    baseUrl: ctx.opts.baseUrl,
    apiKey: ctx.opts.apiKey,
  });
}

async function submit(runner: Runner, request: RunRequest, ctx: CallContext): Promise<SubmittedRun> {
  try {
    return await runner.run(request, ctx);
  } catch (error) {
    throw toLaunchError(error, { code: 'run.submit_failed', stage: 'run' });
  }
}

/**
 * Follows a run to its end: forwards states, messages and logs; enforces the start timeout and
 * user stop requests. Returns the terminal status, or undefined when the agent detached (shutdown).
 */
async function monitor(ctx: JobContext, job: JobTracker, run: SubmittedRun, spec: LaunchSpec): Promise<RunStatus | undefined> {
  const { opts, emitter, redactor } = ctx;
  const clock = opts.clock;
  const { item } = job;
  const runId = job.runId!;
  // The runner says where its warnings belong (W&B shows Kubernetes ones under `Kubernetes`).
  const warnStage = job.runner?.warningStage ?? job.runner?.name ?? 'run';
  const seenMessages = new Set<string>();
  const seenDiagnoses = new Set<string>();
  let startTimedOut = false;
  let stopRequestedAt: number | undefined;
  let cancelled = false;
  const enteredStartingAt = clock.now();
  let latest: RunStatus | undefined;

  const warn = (message: string) => {
    const text = redactor.redact(message);
    emitter.emit('run:warning', { item, runId, message: text });
    opts.source.warn(item, { stage: warnStage, message: text }).catch((e: unknown) => agentError(ctx, e, 'warn'));
  };
  let lastDiagnosis: RunStatus['diagnosis'];
  const onStatus = (s: RunStatus) => {
    latest = s;
    if (s.diagnosis && !isTerminal(s.state)) lastDiagnosis = s.diagnosis;
    if (s.state !== job.state) {
      job.state = s.state;
      emitter.emit('run:state', { item, runId, state: s.state, status: s });
    }
    // A terminal status's messages explain the end; they go into the finish/fail report, not warnings.
    for (const m of isTerminal(s.state) ? [] : s.messages) {
      if (!seenMessages.has(m)) {
        seenMessages.add(m);
        warn(m);
      }
    }
    if (s.diagnosis && !isTerminal(s.state)) {
      const key = `${s.diagnosis.category}:${s.diagnosis.message}`;
      if (!seenDiagnoses.has(key)) {
        seenDiagnoses.add(key);
        warn(`${s.diagnosis.category}: ${s.diagnosis.message} (hint: ${s.diagnosis.hint})`);
      }
    }
  };
  const unsubscribe = run.onStatus(onStatus);
  // Streaming logs can cost the backend a connection per run (Kubernetes): only when someone listens.
  const unlog = !emitter.has('run:log')
    ? undefined
    : run.onLog?.((chunk) => emitter.emit('run:log', { item, runId, chunk: { ...chunk, text: redactor.redact(chunk.text) } }));

  let wake: () => void = () => {};
  // A poke while the monitor is busy (awaiting the source or the backend) must not be lost: it is kept and
  // ends the next sleep at once.
  let poked = false;
  job.poke = () => {
    poked = true;
    wake();
  };
  let done: RunStatus | undefined;
  const finished = run.wait().then(
    (s) => {
      done = s;
      wake();
    },
    (e: unknown) => {
      done = { state: 'failed', messages: [`lost track of the run: ${e instanceof Error ? e.message : String(e)}`] };
      wake();
    },
  );
  try {
    while (!done) {
      if (job.shutdown === 'detach') return undefined;
      if (job.shutdown === 'cancel' && !cancelled) {
        cancelled = true;
        await run.cancel().catch((e: unknown) => agentError(ctx, e, 'cancel'));
      }
      const now = clock.now();
      const state = latest?.state ?? job.state;
      if (!cancelled && opts.startTimeoutMs > 0 && (state === 'starting' || state === 'unknown') && now - enteredStartingAt >= opts.startTimeoutMs) {
        startTimedOut = true;
        cancelled = true;
        await run.cancel().catch((e: unknown) => agentError(ctx, e, 'cancel'));
      }
      if (!cancelled && stopRequestedAt === undefined) {
        const stopped = await opts.source
          .isRunStopped({ entity: spec.entity, project: spec.project, runId, itemId: item.id, queue: item.queue })
          .catch((e: unknown) => {
            agentError(ctx, e, 'isRunStopped');
            return false;
          });
        if (stopped) {
          stopRequestedAt = clock.now();
          warn(`stop requested; cancelling the run in ${Math.round(opts.stoppedRunTimeoutMs / 1000)} s unless it stops by itself`);
        }
      }
      if (!cancelled && stopRequestedAt !== undefined && clock.now() - stopRequestedAt >= opts.stoppedRunTimeoutMs) {
        cancelled = true;
        await run.cancel().catch((e: unknown) => agentError(ctx, e, 'cancel'));
      }
      if (done) break;
      // Sleep until the run ends, a poke, or the next check (the earliest deadline).
      let delay = opts.monitorIntervalMs;
      if (!cancelled && opts.startTimeoutMs > 0 && (state === 'starting' || state === 'unknown')) {
        delay = Math.min(delay, Math.max(0, enteredStartingAt + opts.startTimeoutMs - clock.now()));
      }
      if (stopRequestedAt !== undefined && !cancelled) {
        delay = Math.min(delay, Math.max(0, stopRequestedAt + opts.stoppedRunTimeoutMs - clock.now()));
      }
      if (!poked && !done) {
        await new Promise<void>((resolve) => {
          const t = clock.setTimeout(() => resolve(), delay);
          wake = () => {
            clock.clearTimeout(t);
            resolve();
          };
        });
      }
      poked = false;
      wake = () => {};
      if (!done) {
        const s = await run.status().catch(() => undefined);
        if (s) onStatus(s);
      }
    }
    await finished;
    const final = done!;
    onStatus(final);
    if (startTimedOut && final.state !== 'finished') {
      // Say why it was stuck: the last diagnosis seen while it was starting (image pull, scheduling, …).
      const seen = lastDiagnosis ?? final.diagnosis;
      return {
        ...final,
        state: 'failed',
        diagnosis: {
          category: 'StartTimeout',
          message: `the run did not start within ${formatDuration(opts.startTimeoutMs)}${seen ? ` (last seen: ${seen.category}: ${seen.message})` : ''}`,
          hint: seen?.hint
            ? `${seen.hint}; or raise WANDB_LAUNCH_START_TIMEOUT or start_timeout if it is just slow`
            : 'check why it is stuck (image pull, scheduling); raise WANDB_LAUNCH_START_TIMEOUT or start_timeout if it is just slow',
        },
      };
    }
    return final;
  } finally {
    job.poke = undefined;
    unsubscribe();
    unlog?.();
  }
}

/** Reports a run's end to the source: finished, failed (stage `run`), stopped, or preempted (requeued). */
async function report(ctx: JobContext, job: JobTracker, spec: LaunchSpec, status: RunStatus): Promise<void> {
  const { opts, emitter, redactor } = ctx;
  const item = job.item; // read now: an adopted run's claim may have been taken over while it ran
  const runId = job.runId!;
  const src = opts.source;
  const finish = (state: RunState) => record(ctx, 'finish', () => src.finish(item, { state, exitCode: status.exitCode ?? null, runId }));

  if (status.state === 'preempted' || (job.shutdown !== undefined && status.state !== 'finished' && opts.requeueOnShutdown)) {
    const shutdown = job.shutdown !== undefined && status.state !== 'preempted';
    const resumeCount = (spec._resume_count ?? 0) + (shutdown ? 0 : 1);
    if (shutdown || resumeCount <= opts.maxResumeCount) {
      const raw: Record<string, unknown> = { ...(item.spec as Record<string, unknown>), run_id: runId, _resume_count: resumeCount };
      if (!shutdown) delete raw.sweep_id;
      try {
        const newItemId = await src.requeue(item, raw);
        if (!(await finish(shutdown ? 'stopped' : 'preempted'))) return;
        await released(ctx, job);
        emitter.emit('item:requeued', { item, runId, newItemId, resumeCount });
        ctx.logger.info({ itemId: item.id, runId, newItemId, resumeCount }, shutdown ? 'requeued after shutdown' : 'preempted run requeued');
        return;
      } catch (error) {
        await failAndRelease(ctx, job, toLaunchError(error, { code: 'agent.requeue_failed', stage: 'agent' }));
        return;
      }
    }
    await failAndRelease(
      ctx,
      job,
      new LaunchError({
        code: 'run.preempted',
        stage: 'run',
        category: 'Preempted',
        message: `run ${runId} was preempted ${resumeCount - 1} times; giving up after ${opts.maxResumeCount} requeues`,
        hint: 'use a non-preemptible node pool or raise max_resume_count',
      }),
      status,
    );
    return;
  }
  if (status.state === 'failed') {
    // Failure first, then the exit code: the item's record never shows a failed run as finished.
    if ((await failItem(ctx, job, runFailure(runId, status), status)) && (await finish(status.state))) await released(ctx, job);
    return;
  }
  if (!(await finish(status.state))) return;
  await released(ctx, job);
  emitter.emit('item:finished', { item, runId, state: status.state, status: redactor.redactValue(status) });
  ctx.logger.info({ itemId: item.id, runId, state: status.state, exitCode: status.exitCode }, 'run ended');
}

/** `800 ms`, `5 s`, `30 min`: a timeout as people write it (never "0 s" for a sub-second one). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000 || ms % 60_000 !== 0) return `${Math.round(ms / 100) / 10} s`;
  return `${ms / 60_000} min`;
}

function runFailure(runId: string, status: RunStatus): LaunchError {
  const parts = [`run ${runId} failed`];
  if (status.exitCode !== undefined && status.exitCode !== null) parts.push(`with exit code ${status.exitCode}`);
  let message = parts.join(' ');
  if (status.diagnosis) message += `: ${status.diagnosis.category}: ${status.diagnosis.message}`;
  else if (status.messages.length > 0) message += `: ${status.messages[status.messages.length - 1]}`;
  return new LaunchError({
    code: 'run.failed',
    stage: 'run',
    category: status.diagnosis?.category ?? 'NonZeroExit',
    message,
    hint: status.diagnosis?.hint,
  });
}

/** Retry delays for recording an outcome at the source: the outcome is known only here, so it is worth waiting for. */
const RECORD_RETRY_MS = [200, 500, 1000, 2000, 4000, 8000];

/**
 * Records an outcome at the source (finish, fail), retrying failures: sources make these idempotent (the
 * same end recorded twice is one end). Resolves false when every attempt failed; the caller then emits no
 * event, and the backend keeps the run's outcome for the next agent (see `SubmittedRun.reported`).
 */
async function record(ctx: JobContext, what: string, call: () => Promise<void>): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await call();
      return true;
    } catch (error) {
      const delay = RECORD_RETRY_MS[attempt];
      if (delay === undefined) {
        agentError(ctx, error, `${what} (gave up after ${attempt + 1} attempts; the outcome is not recorded)`);
        return false;
      }
      ctx.logger.warn({ err: error instanceof Error ? ctx.redactor.redact(error.message) : String(error), attempt: attempt + 1 }, `${what} failed; retrying`);
      await new Promise<void>((resolve) => ctx.opts.clock.setTimeout(resolve, delay));
    }
  }
}

/** Tells the backend that the run's end is recorded, so it may let the run go. */
async function released(ctx: JobContext, job: JobTracker): Promise<void> {
  const run = job.submitted;
  if (!run?.reported) return;
  await run.reported().catch((e: unknown) => agentError(ctx, e, 'reported'));
}

async function failAndRelease(ctx: JobContext, job: JobTracker, error: LaunchError, status?: RunStatus): Promise<void> {
  if (await failItem(ctx, job, error, status)) await released(ctx, job);
}

/** Reports a failure; resolves false when the source could not record it. */
async function failItem(ctx: JobContext, job: JobTracker, error: LaunchError, status?: RunStatus): Promise<boolean> {
  const { opts, emitter, redactor } = ctx;
  const { item } = job;
  let message = redactor.redact(error.describe());
  if (status?.logTail) message += `\n--- last lines of the run's log ---\n${redactor.redact(status.logTail)}`;
  const files: string[] = [];
  if (opts.filesDir) {
    try {
      const dir = join(opts.filesDir, safeName(item.id), 'error');
      await mkdir(dir, { recursive: true });
      const file = join(dir, 'error.log');
      const stack = error.stack ? redactor.redact(error.stack) : '';
      await writeFile(file, `${message}\n\n${stack}\n`);
      files.push(file);
    } catch (e) {
      agentError(ctx, e, 'write error.log');
    }
  }
  const stage: Stage = error.stage;
  ctx.logger.warn({ itemId: item.id, runId: job.runId, stage, code: error.code }, `job failed: ${message}`);
  // The event follows the report, as `item:finished` does: a listener reading the queue sees the failure.
  if (!(await record(ctx, 'fail', () => opts.source.fail(item, { stage, message, files })))) return false;
  emitter.emit('item:failed', { item, runId: job.runId, stage, message });
  return true;
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200) || '_';
}

export function agentError(ctx: { emitter: TypedEmitter; logger: Logger; redactor: Redactor }, error: unknown, where: string): void {
  const e = error instanceof Error ? error : new Error(String(error));
  const message = ctx.redactor.redact(e.message);
  ctx.logger.error({ where, err: message }, `agent error in ${where}: ${message}`);
  ctx.emitter.emit('agent:error', { error: new Error(message), where });
}
