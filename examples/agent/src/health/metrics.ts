import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LaunchError, type QueueItem, type QueueSource, type Runner } from '@launch/core';
import type { ObservedAgent } from './options.js';
import { instrumentQueueSource, type PendingPop, type SourceInstruments } from './instrument-source.js';

/** Seconds: a run lasts from seconds to days. */
const RUN_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400];
/** Seconds: a cached build takes a second, a cold one many minutes. */
const BUILD_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
/** Seconds: a file operation takes milliseconds, a W&B API call with retries up to a minute. */
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface LaunchMetricsOptions {
  /** Also export Node's process metrics (`process_*`, `nodejs_*`) from prom-client. Default false. */
  processMetrics?: boolean;
  /** Clock in ms for durations and pop ages (tests move it). Default `performance.now`. */
  now?: () => number;
}

/** Extra status the health server feeds into the agent gauges. */
export interface AgentObservation {
  /** Whether `/readyz` would answer 200 (exported as `launch_agent_ready`). */
  ready?: () => boolean;
  /** When (ms since the epoch) the agent's loop last proved alive, if ever. */
  lastLoopAt?: () => number | undefined;
  /** The agent's runners: those with informers (the Kubernetes runner's `watchStats()`) report watch counters. */
  runners?: readonly Runner[];
}

/** Prometheus metrics of one agent, in their own registry (never prom-client's global one). */
export interface LaunchMetrics {
  readonly registry: Registry;
  /**
   * Wraps a queue source so that every call is timed and every failure counted by operation, and pops
   * by queue and result. Give the wrapped source to `createAgent()`. Other properties pass through.
   */
  instrumentSource<S extends QueueSource>(source: S): S;
  /** Counts the agent's jobs, builds and runs from its events, and reads its slots from `snapshot()`. Returns a detach function. */
  observeAgent(agent: ObservedAgent, extra?: AgentObservation): () => void;
  /** Pops of instrumented sources that have not returned yet. */
  pendingPops(): PendingPop[];
  /** The Prometheus text exposition of every metric. */
  text(): Promise<string>;
  /** The Content-Type of `text()`. */
  readonly contentType: string;
}

/** What the Kubernetes runner (and any runner with informers) exposes about its watches. */
interface WatchStats {
  informers: number;
  watches: number;
  relists410: number;
  reconnects: number;
}
type WatchingRunner = Runner & { watchStats(): WatchStats };
const watches = (r: Runner): r is WatchingRunner => typeof (r as Partial<WatchingRunner>).watchStats === 'function';

/**
 * Creates the agent's metrics (see docs/metrics.md for each one, with PromQL).
 *
 * @example
 * ```ts
 * const metrics = createLaunchMetrics();
 * const agent = createAgent({ source: metrics.instrumentSource(queue), queues, runners });
 * const health = await startHealthServer({ agent, metrics, port: 9464 });
 * ```
 */
export function createLaunchMetrics(options: LaunchMetricsOptions = {}): LaunchMetrics {
  const now = options.now ?? (() => performance.now());
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics) collectDefaultMetrics({ register: registry });

  const jobsClaimed = new Counter({ name: 'launch_jobs_claimed_total', help: 'Queue items this agent claimed', labelNames: ['queue'], registers });
  const jobs = new Counter({
    name: 'launch_jobs_total',
    help: 'Jobs that ended, by queue and final state (finished, failed, stopped, requeued)',
    labelNames: ['queue', 'state'],
    registers,
  });
  const failures = new Counter({
    name: 'launch_job_failures_total',
    help: 'Failed jobs by queue and the stage they failed in (agent, build, run)',
    labelNames: ['queue', 'stage'],
    registers,
  });
  const runDuration = new Histogram({
    name: 'launch_run_duration_seconds',
    help: 'Time from submission to the runner until the job ended, by queue and final state',
    labelNames: ['queue', 'state'],
    buckets: RUN_BUCKETS,
    registers,
  });
  const warnings = new Counter({
    name: 'launch_run_warnings_total',
    help: 'Warnings attached to running jobs (diagnoses, stop requests)',
    labelNames: ['queue'],
    registers,
  });
  const builds = new Counter({
    name: 'launch_builds_total',
    help: 'Image builds by queue and result (built, cached, failed)',
    labelNames: ['queue', 'result'],
    registers,
  });
  const buildDuration = new Histogram({
    name: 'launch_build_duration_seconds',
    help: 'Time to build or reuse a job image, by queue and result (built, cached, failed)',
    labelNames: ['queue', 'result'],
    buckets: BUILD_BUCKETS,
    registers,
  });
  const agentErrors = new Counter({
    name: 'launch_agent_errors_total',
    help: 'Errors the agent survived (agent:error events), by where they happened',
    labelNames: ['where'],
    registers,
  });
  const sourceInstruments: SourceInstruments = {
    now,
    pops: new Counter({ name: 'launch_queue_pops_total', help: 'Pops by queue and result (item, empty, error)', labelNames: ['queue', 'result'], registers }),
    popDuration: new Histogram({
      name: 'launch_queue_pop_duration_seconds',
      help: 'Latency of pops by queue',
      labelNames: ['queue'],
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'launch_queue_source_request_duration_seconds',
      help: 'Latency of queue-source calls by source and operation',
      labelNames: ['source', 'operation'],
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    errors: new Counter({
      name: 'launch_queue_source_errors_total',
      help: 'Queue-source calls that failed, by source and operation',
      labelNames: ['source', 'operation'],
      registers,
    }),
    pending: new Map(),
  };

  let agent: ObservedAgent | undefined;
  let extra: AgentObservation = {};
  const watching = () => (extra.runners ?? []).filter(watches);
  const sumWatch = (key: keyof WatchStats) => watching().reduce((n, r) => n + (Number(r.watchStats()[key]) || 0), 0);

  new Gauge({
    name: 'launch_slots_in_use',
    help: 'Jobs holding a slot now, by kind (job, scheduler)',
    labelNames: ['kind'],
    registers,
    collect() {
      if (!agent) return;
      const running = agent.snapshot().running;
      const schedulers = running.filter((j) => j.scheduler).length;
      this.set({ kind: 'job' }, running.length - schedulers);
      this.set({ kind: 'scheduler' }, schedulers);
    },
  });
  new Gauge({
    name: 'launch_slots_max',
    help: 'Slots the agent may fill, by kind (max_jobs, max_schedulers); +Inf when unlimited',
    labelNames: ['kind'],
    registers,
    collect() {
      if (!agent) return;
      const s = agent.snapshot();
      this.set({ kind: 'job' }, s.maxJobs < 0 ? Infinity : s.maxJobs);
      this.set({ kind: 'scheduler' }, s.maxSchedulers < 0 ? Infinity : s.maxSchedulers);
    },
  });
  new Gauge({
    name: 'launch_agent_ready',
    help: '1 while the agent is registered and serving its queues (what /readyz says), else 0',
    registers,
    collect() {
      this.set(extra.ready?.() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'launch_agent_last_loop_timestamp_seconds',
    help: 'Unix time the agent loop last proved alive (a poll or a status report)',
    registers,
    collect() {
      const at = extra.lastLoopAt?.();
      if (at === undefined) this.reset();
      else this.set(at / 1000);
    },
  });
  new Gauge({
    name: 'launch_informers',
    help: 'Open Kubernetes informers (one watch per namespace and kind)',
    registers,
    collect() {
      this.set(sumWatch('informers'));
    },
  });
  // The runners keep cumulative counts; each scrape republishes them.
  const cumulative = (name: string, help: string, key: keyof WatchStats) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(sumWatch(key));
      },
    });
  cumulative('launch_informer_reconnects_total', 'Kubernetes watches re-established after an error, a failed list or a closed stream', 'reconnects');
  cumulative('launch_informer_relists_total', 'Kubernetes informers that relisted because their resourceVersion expired (410 Gone)', 'relists410');
  cumulative('launch_informer_watches_total', 'Kubernetes watch requests opened', 'watches');

  return {
    registry,
    contentType: registry.contentType,
    instrumentSource: (source) => instrumentQueueSource(source, sourceInstruments),
    pendingPops: () => [...sourceInstruments.pending.values()].map((p) => ({ ...p, ageMs: now() - p.startedAt })),
    text: () => registry.metrics(),

    observeAgent(observed, observation = {}) {
      if (agent) {
        throw new LaunchError({
          code: 'health.agent_observed',
          message: 'these metrics already observe an agent',
          hint: 'create one set of metrics per agent with createLaunchMetrics()',
        });
      }
      agent = observed;
      extra = observation;
      const buildStarted = new Map<string, number>();
      const runStarted = new Map<string, number>();
      const seconds = (since: number) => Math.max(0, now() - since) / 1000;
      /** Every claimed job ends with exactly one of item:finished, item:failed or item:requeued. */
      const ended = (item: QueueItem, state: string) => {
        const queue = item.queue;
        jobs.inc({ queue, state });
        const run = runStarted.get(item.id);
        if (run !== undefined) {
          runDuration.observe({ queue, state }, seconds(run));
          runStarted.delete(item.id);
        }
        const build = buildStarted.get(item.id);
        if (build !== undefined) {
          // The job ended while its build was under way: the build failed.
          builds.inc({ queue, result: 'failed' });
          buildDuration.observe({ queue, result: 'failed' }, seconds(build));
          buildStarted.delete(item.id);
        }
      };
      const offs = [
        observed.on('item:claimed', ({ item }) => jobsClaimed.inc({ queue: item.queue })),
        observed.on('build:started', ({ item }) => buildStarted.set(item.id, now())),
        observed.on('build:finished', ({ item, cached }) => {
          const start = buildStarted.get(item.id);
          buildStarted.delete(item.id);
          const result = cached ? 'cached' : 'built';
          builds.inc({ queue: item.queue, result });
          if (start !== undefined) buildDuration.observe({ queue: item.queue, result }, seconds(start));
        }),
        observed.on('run:submitted', ({ item }) => runStarted.set(item.id, now())),
        observed.on('run:warning', ({ item }) => warnings.inc({ queue: item.queue })),
        observed.on('item:finished', ({ item, state }) => ended(item, state)),
        observed.on('item:failed', ({ item, stage }) => {
          failures.inc({ queue: item.queue, stage });
          ended(item, 'failed');
        }),
        observed.on('item:requeued', ({ item }) => ended(item, 'requeued')),
        observed.on('agent:error', ({ where }) => agentErrors.inc({ where: errorPlace(where) })),
      ];
      return () => {
        for (const off of offs) off();
        agent = undefined;
        extra = {};
      };
    },
  };
}

/**
 * The operation an `agent:error` names, without the queue, runner or event it mentions
 * (`pop from gpu` → `pop`, `adopt (kubernetes)` → `adopt`), so the label's values stay few.
 */
export function errorPlace(where: string): string {
  const head = where.split(/ from | of | \(/)[0] ?? '';
  const name = head
    .trim()
    .replace(/[^A-Za-z0-9_.:-]+/g, '_')
    .slice(0, 40);
  return name || 'unknown';
}
