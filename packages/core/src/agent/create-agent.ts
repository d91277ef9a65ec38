import { hostname as osHostname } from 'node:os';
import type { QueueItem } from '../contracts/queue-source.js';
import type { Runner, SubmittedRun } from '../contracts/runner.js';
import { LaunchError, toLaunchError } from '../errors.js';
import { childLogger } from '../logger.js';
import { Redactor, isSecretEnvName } from '../redact.js';
import type { AgentStatus } from '../status.js';
import { TypedEmitter } from './emitter.js';
import { agentError, followAdoptedRun, runJob, type JobContext, type JobTracker } from './job.js';
import { resolveOptions } from './options.js';
import type { Agent, AgentOptions, AgentSnapshot, AgentStopped } from './types.js';

/** Minimum time between two agent-status reports, so a busy agent does not flood the source. */
const STATUS_MIN_INTERVAL_MS = 1000;
/** Items claimed at once when that many slots are free. */
const MAX_CONCURRENT_POPS = 8;

/**
 * Composes a queue source, runners and an optional builder into an agent with W&B's loop semantics:
 * queues served round robin, `max_jobs`/`max_schedulers` caps, ack before run, failures reported with
 * their stage, start timeout, stop requests, preemption requeue. Unlike W&B's fixed 10 s sleep, the
 * loop waits for the source's notification or its poll interval, and polls again at once after taking
 * a job (while slots are free) and the moment a job frees a slot of a full agent.
 *
 * @example
 * ```ts
 * const queue = createEmbeddedQueue({ stateDir: '/var/lib/launch' });
 * const agent = createAgent({ source: queue, queues: ['default'], runners: [createLocalProcessRunner({ logDir })] });
 * await agent.start();
 * ```
 */
export function createAgent(options: AgentOptions): Agent {
  const opts = resolveOptions(options);
  const logger = childLogger(opts.logger, { component: 'agent' });
  // Agent-wide secrets live as long as the agent; a job's live in its scope (job.secrets) until it ends.
  const redactor = opts.redactor ?? new Redactor();
  redactor.add(opts.apiKey);
  for (const [k, v] of Object.entries(opts.env)) if (isSecretEnvName(k)) redactor.add(v);
  const emitter = new TypedEmitter((error, event) => reportError(error, `listener of ${event}`));
  /** Logs an error the agent survives and emits it as `agent:error` (secrets scrubbed). */
  const reportError = (error: unknown, where: string) => agentError({ emitter, logger, redactor }, error, where);
  const clock = opts.clock;
  const source = opts.source;

  const jobs = new Map<string, JobTracker>();
  const queues = [...opts.queues];
  let agentId: string | undefined;
  let agentName: string | undefined;
  let phase: AgentSnapshot['status'] = 'STARTING';
  let stopping = false;
  let started = false;
  let loopDone: Promise<void> = Promise.resolve();
  let wakeLoop: () => void = () => {};
  let pendingWake = false;
  // Sweep schedulers acked while max_schedulers run, in arrival order; started as schedulers end.
  const schedulerWaiters: { job: JobTracker; start: () => void }[] = [];
  let unsubscribe: (() => void) | undefined;
  // Every timer of the loop, the queue and the runners is unref'd (they must not hold a stopped agent's
  // process open); this one handle holds the process open from start() until the agent has stopped, so a
  // job retrying its report, or an idle agent, is never cut short by the event loop running dry.
  let keepAlive: NodeJS.Timeout | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopPromise: Promise<void> | undefined;
  // Aborted when the agent stops: the signal of agent-wide backend calls (adopt). A job's build and
  // submission have their own (job.abort), aborted only while the job is not yet submitted.
  const agentAbort = new AbortController();

  const counts = () => {
    let regular = 0;
    let schedulers = 0;
    for (const j of jobs.values()) {
      if (!j.scheduler) regular++;
      else if (!j.waitingForSlot) schedulers++;
    }
    return { regular, schedulers };
  };

  /** Starts waiting schedulers while `max_schedulers` allows (or all of them on shutdown). */
  const startWaitingSchedulers = () => {
    while (schedulerWaiters.length > 0 && (stopping || counts().schedulers < opts.maxSchedulers)) {
      const next = schedulerWaiters.shift()!;
      next.job.waitingForSlot = false;
      next.job.poke = undefined;
      next.start();
    }
  };

  const schedulerSlot = (job: JobTracker) =>
    new Promise<void>((resolve) => {
      job.waitingForSlot = true;
      schedulerWaiters.push({ job, start: resolve });
      // A shutdown pokes every job: a waiting scheduler then goes on to be handed back, not started.
      job.poke = startWaitingSchedulers;
      startWaitingSchedulers();
      if (job.waitingForSlot) logger.info({ itemId: job.item.id }, 'sweep scheduler waits: max_schedulers are running');
    });

  const jobCtx = (): JobContext => ({
    opts,
    emitter,
    redactor,
    agentName: agentName!,
    logger,
    schedulerSlot,
  });

  const wake = () => {
    pendingWake = true;
    wakeLoop();
  };
  // Whether the next turn of the loop pops whatever the time: at start, when the source says an item
  // arrived, after a turn that took items, when a job frees a slot of a full agent, and when the last job
  // ends. Other wakes (a job ending while others run and slots were free, a heartbeat) pop only once the
  // poll interval has passed since the last pop, so a burst of jobs ending one by one costs no extra pops.
  let popDue = true;
  const wakeToPop = () => {
    popDue = true;
    wake();
  };

  // --- agent status: reported on change (throttled) and kept alive every other poll, as W&B does ---
  let lastStatus: AgentStatus | undefined;
  let lastStatusAt = 0;
  let statusTimer: unknown;
  let statusInFlight: Promise<void> = Promise.resolve();
  const desiredStatus = (): AgentStatus => (stopping ? 'KILLED' : jobs.size > 0 ? 'RUNNING' : 'POLLING');
  const sendStatus = (status: AgentStatus) => {
    lastStatus = status;
    lastStatusAt = clock.now();
    emitter.emit('agent:status', { status });
    statusInFlight = statusInFlight.then(() => source.updateAgentStatus(agentId!, status)).catch((e: unknown) => reportError(e, 'updateAgentStatus'));
  };
  const reportStatus = (force = false) => {
    if (!agentId) return;
    const status = desiredStatus();
    if (!force && status === lastStatus) return;
    const wait = lastStatusAt + STATUS_MIN_INTERVAL_MS - clock.now();
    if (force || wait <= 0 || status === 'KILLED') {
      if (statusTimer !== undefined) clock.clearTimeout(statusTimer);
      statusTimer = undefined;
      sendStatus(status);
    } else if (statusTimer === undefined) {
      statusTimer = clock.setTimeout(() => {
        statusTimer = undefined;
        if (!stopping && desiredStatus() !== lastStatus) sendStatus(desiredStatus());
      }, wait);
    }
  };

  const startJob = (item: QueueItem) => {
    const job: JobTracker = {
      item,
      state: 'unknown',
      scheduler: false,
      startedAt: clock.now(),
      secrets: redactor.scope(item.id),
      abort: new AbortController(),
    };
    if (stopping) job.shutdown = 'cancel';
    jobs.set(item.id, job);
    reportStatus();
    track(item.id, runJob(jobCtx(), job), 'runJob');
  };

  /** Frees a job's slot when its work settles, starts a waiting scheduler, and polls again. */
  const track = (itemId: string, work: Promise<void>, where: string) => {
    work
      .catch((e: unknown) => reportError(e, where))
      .then(() => {
        // The job is over: its secrets leave the matcher (its last events and reports were redacted).
        jobs.get(itemId)?.secrets?.release();
        const wasFull = counts().regular >= opts.maxJobs;
        jobs.delete(itemId);
        startWaitingSchedulers();
        reportStatus();
        // A pop when a slot of a full agent frees, and when the last job ends (one pop, which tells an idle
        // agent it is idle: `agent:idle`, which --exit-when-idle waits for).
        if ((wasFull && counts().regular < opts.maxJobs) || jobs.size === 0) wakeToPop();
        else wake();
      });
  };

  const popNext = async (): Promise<QueueItem | null> => {
    for (const queue of [...queues]) {
      let item: QueueItem | null = null;
      try {
        item = await source.pop(queue, agentId!);
      } catch (error) {
        reportError(error, `pop from ${queue}`);
        continue;
      }
      if (item) {
        // Round robin: the queue that just gave a job goes to the back (found by name: pops run concurrently).
        const at = queues.indexOf(queue);
        if (at >= 0) queues.splice(at, 1);
        queues.push(queue);
        return item;
      }
    }
    return null;
  };

  /** Sleeps `ms` unless woken first; true when the time ran out (not woken). */
  const sleep = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (pendingWake || stopping) return resolve(false);
      const t = clock.setTimeout(() => resolve(true), ms);
      wakeLoop = () => {
        clock.clearTimeout(t);
        resolve(false);
      };
    });

  const loop = async () => {
    // Whether the last pop round filled every pop: only then are the next round's pops made concurrently.
    let burst = false;
    let lastControlCheck = 0;
    let lastKeepAlive = clock.now();
    let lastHeartbeat = clock.now();
    let lastPopAt = clock.now();
    while (!stopping) {
      pendingWake = false;
      wakeLoop = () => {};
      const now = clock.now();
      if (source.shouldStop && now - lastControlCheck >= Math.max(opts.pollIntervalMs, 1000)) {
        lastControlCheck = now;
        const stop = await source.shouldStop(agentId!).catch((e: unknown) => {
          reportError(e, 'shouldStop');
          return false;
        });
        if (stop) {
          logger.info({}, 'the queue asked this agent to stop');
          void stopWith({ reason: 'stop requested by the queue', cause: 'source' });
          return;
        }
      }
      if (source.heartbeat && jobs.size > 0 && now - lastHeartbeat >= opts.monitorIntervalMs) {
        lastHeartbeat = now;
        await source
          .heartbeat(
            agentId!,
            [...jobs.values()].map((j) => j.item),
          )
          .catch((e: unknown) => reportError(e, 'heartbeat'));
      }
      if (now - lastKeepAlive >= 2 * opts.pollIntervalMs) {
        lastKeepAlive = now;
        reportStatus(true);
      }
      let took = false;
      const free = opts.maxJobs - counts().regular;
      if (free > 0 && (popDue || now - lastPopAt >= opts.pollIntervalMs)) {
        popDue = false;
        lastPopAt = now;
        // One pop per turn, as W&B; while pops keep returning items and slots are free, claim several at
        // once (each pop is a chain of file or API calls, and serial claims leave the agent idle between
        // them). An idle agent therefore makes one pop per queue per poll, whatever max_jobs is.
        const width: number = burst ? Math.min(free, MAX_CONCURRENT_POPS) : 1;
        const popStart = clock.now();
        const items: (QueueItem | null)[] = await Promise.all(Array.from({ length: width }, () => popNext()));
        const got: number = items.filter(Boolean).length;
        burst = got === width;
        emitter.emit('agent:poll', { pops: width, items: got, durationMs: clock.now() - popStart });
        for (const item of items) {
          if (!item) continue;
          const following = jobs.get(item.id);
          if (following) {
            // The queue handed back an item whose run this agent already follows (adopted after a restart,
            // the dead agent's claim expired): take the claim over, never start the job a second time.
            following.item = item;
            if (following.runId) {
              await source.ack(item, following.runId).catch((e: unknown) => reportError(e, 'ack (adopted)'));
            }
            logger.info({ itemId: item.id, runId: following.runId }, 'took over the claim of an adopted run');
          } else if (stopping && source.release) {
            await source.release(item).catch((e: unknown) => reportError(e, 'release'));
          } else {
            // While stopping, a source that cannot take the item back gets it through the job's shutdown
            // path (acked, then handed back as stopped and requeued): a popped item is never left claimed.
            took = true;
            startJob(item);
          }
        }
        if (!items.some(Boolean) && jobs.size === 0) emitter.emit('agent:idle', {});
      } else if (free <= 0) {
        // Every slot is busy: no pop this turn, but the loop is alive (health checks listen for this).
        emitter.emit('agent:poll', { pops: 0, items: 0, durationMs: 0 });
      }
      if (stopping) break;
      if (took && counts().regular < opts.maxJobs) {
        // Yield to the event loop so timers and I/O run between back-to-back pops.
        popDue = true;
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      // Sleep until the next pop is due (a full agent is woken when a slot frees), or the next heartbeat.
      const after = clock.now();
      const popIn = counts().regular < opts.maxJobs ? Math.max(0, lastPopAt + opts.pollIntervalMs - after) : opts.pollIntervalMs;
      let delay = popIn;
      if (source.heartbeat && jobs.size > 0) delay = Math.min(delay, Math.max(0, lastHeartbeat + opts.monitorIntervalMs - after));
      // A timer may fire a millisecond short of the clock's reading of the interval: the pop it slept for is due.
      if ((await sleep(delay)) && delay === popIn) popDue = true;
    }
  };

  /** Stops the agent once; the first call's reason and cause are the ones `agent:stopped` carries. */
  const stopWith = (stop: AgentStopped): Promise<void> => {
    if (stopPromise) return stopPromise;
    stopping = true;
    agentAbort.abort(new LaunchError({ code: 'agent.stopping', message: 'the agent is stopping' }));
    wake();
    stopPromise = (async () => {
      unsubscribe?.();
      await loopDone;
      phase = 'STOPPED';
      if (agentId) reportStatus(true);
      for (const job of jobs.values()) {
        const remote = job.runner?.capabilities.remote ?? false;
        job.shutdown = remote ? 'detach' : 'cancel';
        // A build or submission still in flight is cancelled (its item is handed back as stopped).
        if (!job.submitted) job.abort?.abort(new LaunchError({ code: 'agent.stopping', message: 'the agent is stopping' }));
        job.poke?.();
        logger.info({ itemId: job.item.id, runId: job.runId, state: job.state }, remote ? 'leaving remote run running' : 'terminating local run');
      }
      // Wait for every job to settle: local runs are cancelled (TERM, then KILL) and reported.
      await new Promise<void>((resolve) => {
        const check = () => (jobs.size === 0 ? resolve() : clock.setTimeout(check, 20));
        check();
      });
      await statusInFlight;
      emitter.emit('agent:stopped', stop);
      logger.info({ reason: stop.reason, cause: stop.cause }, 'agent stopped');
      clearInterval(keepAlive);
      resolveStopped();
    })();
    return stopPromise;
  };

  const api: Agent = {
    async start() {
      if (started) throw new LaunchError({ code: 'agent.started', message: 'the agent was already started' });
      started = true;
      const reg = await source.register({
        queues,
        entity: opts.entity,
        hostname: opts.hostname ?? osHostname(),
        version: opts.version,
        config: redactor.redactValue(opts.config),
      });
      agentId = reg.id;
      agentName = reg.name;
      if (!stopPromise) keepAlive = setInterval(() => {}, 2 ** 31 - 1);
      emitter.emit('agent:registered', { agentId: reg.id, name: reg.name });
      logger.info({ agentId: reg.id, name: reg.name, queues }, 'agent registered');
      for (const runner of opts.runners) {
        if (!runner.capabilities.adopt || !runner.adopt) continue;
        try {
          const runs = await runner.adopt(reg.name, { logger, signal: agentAbort.signal });
          // Stopped while adopting: a run found now would miss the shutdown; the next agent adopts it.
          if (stopping) break;
          for (const run of runs) {
            const item: QueueItem = { id: run.itemId, queue: run.queue ?? '', spec: run.spec ?? {} };
            if (jobs.has(item.id)) continue;
            logger.info({ itemId: run.itemId, runId: run.runId, backendId: run.id }, 'adopted a run started before a restart');
            adopt(item, run, runner);
          }
        } catch (error) {
          if (stopping) break; // the stop aborted the call: not an error
          reportError(error, `adopt (${runner.name})`);
        }
      }
      if (stopping) return;
      if (source.capabilities.notify && source.subscribe) unsubscribe = source.subscribe(wakeToPop);
      phase = 'POLLING';
      reportStatus(true);
      loopDone = loop().catch((e: unknown) => {
        reportError(e, 'loop');
        const cause = toLaunchError(e, { code: 'agent.loop_failed', stage: 'agent' });
        const error = new LaunchError({
          code: cause.code,
          stage: cause.stage,
          category: cause.category,
          hint: cause.hint,
          message: redactor.redact(cause.message),
        });
        void stopWith({ reason: `the agent loop failed: ${error.message}`, cause: 'fatal', error });
      });
    },

    stop(reason = 'stopped') {
      return stopWith({ reason, cause: 'requested' });
    },

    stopped,

    on(event, listener) {
      return emitter.on(event, listener);
    },

    snapshot() {
      return {
        agentId,
        name: agentName,
        status: phase === 'POLLING' ? desiredStatus() : phase,
        running: [...jobs.values()].map((j) => ({
          item: j.item,
          runId: j.runId ?? '',
          state: j.state,
          scheduler: j.scheduler,
          startedAt: j.startedAt,
          backendId: j.backendId,
        })),
        maxJobs: opts.maxJobs,
        maxSchedulers: opts.maxSchedulers,
      };
    },
  };

  /** Tracks a run adopted after a restart until it ends, then reports it. */
  const adopt = (item: QueueItem, run: SubmittedRun, runner: Runner) => {
    const job: JobTracker = { item, runId: run.runId, state: 'unknown', scheduler: false, startedAt: clock.now(), runner, submitted: run, backendId: run.id };
    job.secrets = redactor.scope(item.id);
    job.secrets.addSpecSecrets(item.spec);
    jobs.set(item.id, job);
    // Adopted items were acked before the restart: only the monitor-and-report half of the job remains.
    track(item.id, followAdoptedRun(jobCtx(), job), 'adopted run');
  };

  return api;
}
