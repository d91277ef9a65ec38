/**
 * Core benchmark 1: enqueue → process-start latency through the embedded queue.
 *
 * The agent is the real built binary (`node examples/agent/dist/cli.js run`, default options: fsync
 * on, max_jobs 1) in its own process; the bench process enqueues with `createEmbeddedQueue` (default
 * options) on the same state directory, so every job crosses processes: file write → inotify wake-up
 * in the agent → claim → spawn. Each job is `sh -c 'date +%s%N > file'`: the job's own clock
 * reading when it runs is the "process start". Latency = that reading minus the time just before
 * `enqueue()` was called (so the producer's write and fsync count). Jobs are enqueued one at a time,
 * each after the previous job has ended plus a random 20–50 ms, so each measures an idle agent
 * waking up, not a backlog.
 *
 *   npx tsx bench/core-latency.ts            (after `pnpm build`)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgentProcess } from './lib/agent-process.js';
import { sleep, wallMs } from './lib/clock.js';
import { commandSpec, openBenchQueue } from './lib/queue.js';
import { runIfMain, writeResult } from './lib/results.js';
import { distribution } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

const JOBS = Number(process.env.BENCH_LATENCY_JOBS ?? 250);
/** Issue 8's targets. */
export const LATENCY_TARGETS = { p50Ms: 5, p99Ms: 20 };

export interface LatencyFigures {
  jobs: number;
  /** Enqueue call → the job process's own start time (ms). */
  latencyMs: ReturnType<typeof distribution>;
  /** Where the time goes (p50 / p90 / p99 of each step, ms; the agent's timestamps have 1 ms resolution). */
  stepsMs: Record<string, ReturnType<typeof distribution>>;
}

/** Measures `jobs` idle wake-ups against an agent process of `kind` (`binary` by default). */
export async function measureLatency(options: { jobs: number; kind?: 'binary' | 'library'; fsync?: boolean }): Promise<LatencyFigures> {
  const bq = openBenchQueue('latency', options.fsync === undefined ? {} : { fsync: options.fsync });
  const agent = startAgentProcess({ stateDir: bq.dir, maxJobs: 1, kind: options.kind, fsync: options.fsync });
  try {
    await agent.waitFor((e) => e.event === 'agent:registered', 30_000, 'the agent to register');
    // Let the agent finish its first (empty) poll and settle into waiting.
    await agent.waitFor((e) => e.event === 'agent:idle' || e.event === 'agent:registered', 5_000, 'the first poll');
    await sleep(200);
    const latency: number[] = [];
    const enqueueCall: number[] = [];
    const toClaim: number[] = [];
    const claimToSubmit: number[] = [];
    const submitToStart: number[] = [];
    for (let i = 0; i < options.jobs; i++) {
      const file = join(bq.dir, `start-${i}`);
      const before = wallMs();
      const record = await bq.queue.enqueue({ queue: 'default', spec: commandSpec('sh', '-c', `date +%s%N > ${file}`) });
      const after = wallMs();
      enqueueCall.push(after - before);
      const end = await agent.waitFor((e) => e.item === record.id && (e.event === 'item:finished' || e.event === 'item:failed'), 30_000, `job ${i} to end`);
      if (end.event === 'item:failed') throw new Error(`job ${i} failed: ${String(end.message)}`);
      const startedAt = Number(BigInt(readFileSync(file, 'utf8').trim()) / 1000n) / 1000; // ns → ms, keeping µs
      latency.push(startedAt - before);
      const claimed = agent.events.find((e) => e.item === record.id && e.event === 'item:claimed');
      const submitted = agent.events.find((e) => e.item === record.id && e.event === 'run:submitted');
      if (claimed && submitted) {
        toClaim.push(claimed.time - after);
        claimToSubmit.push(submitted.time - claimed.time);
        submitToStart.push(startedAt - submitted.time);
      }
      await sleep(20 + Math.random() * 30);
    }
    return {
      jobs: options.jobs,
      latencyMs: distribution(latency, 2),
      stepsMs: {
        'enqueue call (write + fsync)': distribution(enqueueCall, 2),
        'enqueued → claimed (wake-up, pop)': distribution(toClaim, 1),
        'claimed → submitted (ack, log, spawn)': distribution(claimToSubmit, 1),
        'submitted → job clock (exec sh, date)': distribution(submitToStart, 1),
      },
    };
  } finally {
    await agent.stop();
    await bq.close();
  }
}

/** Runs the benchmark; prints a table and writes `bench/results/core-latency.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const f = await measureLatency({ jobs: JOBS });
  const l = f.latencyMs;
  const met = l.p50 <= LATENCY_TARGETS.p50Ms && l.p99 <= LATENCY_TARGETS.p99Ms;
  const lines = [
    `Core 1: enqueue → process start, embedded queue, agent binary in another process (${f.jobs} jobs, idle agent each time)`,
    formatTable([
      ['', 'p50', 'p90', 'p99', 'max', 'mean'],
      ['latency ms', l.p50, l.p90, l.p99, l.max, l.mean],
      ...Object.entries(f.stepsMs).map(([k, d]) => [`  ${k}`, d.p50, d.p90, d.p99, d.max, d.mean]),
    ]),
    `target p50 ≤ ${LATENCY_TARGETS.p50Ms} ms, p99 ≤ ${LATENCY_TARGETS.p99Ms} ms: ${verdict(met)} (W&B polls every 10 s: mean ≈ 5 000 ms)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const result = {
    description: 'enqueue → process-start latency through the embedded queue (agent binary in a child process)',
    method:
      "agent = node examples/agent/dist/cli.js run (defaults: fsync on, max_jobs 1); the bench process enqueues with createEmbeddedQueue (defaults); job = sh -c 'date +%s%N > file'; latency = the job's clock reading − the time before enqueue(); next enqueue 20–50 ms after the previous job ended",
    ...f,
    targets: LATENCY_TARGETS,
    met,
    durationMs: Date.now() - started,
  };
  writeResult('core-latency', result);
  return {
    ...result,
    summary: [
      {
        benchmark: 'core-latency',
        figure: 'p50 / p99 latency',
        value: `${l.p50} / ${l.p99} ms`,
        target: `≤ ${LATENCY_TARGETS.p50Ms} / ≤ ${LATENCY_TARGETS.p99Ms} ms`,
        met,
      },
    ],
  };
}

runIfMain(import.meta.url, run);
