/**
 * Core benchmark 5: what the embedded queue's fsync costs. The agent binary has no switch for it
 * (it always uses the default, fsync on), so this runs bench/lib/library-agent.mjs — the same built
 * libraries wired as the CLI wires them, minus the CLI's output — with fsync on and off, on the
 * workloads of core benchmarks 1–3 (smaller: 100 latency jobs, 1,000 parallel jobs). Each workload
 * runs in the order on, off, off, on, so a machine that gets busier or quieter during the run
 * weighs on both settings alike; the figures are the means of the two runs of each setting.
 *
 *   npx tsx bench/core-fsync.ts              (after `pnpm build`)
 */
import { backlogRows } from './core-backlog.js';
import { measureLatency, type LatencyFigures } from './core-latency.js';
import { measureThroughput, type ThroughputFigures } from './lib/throughput.js';
import { runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const LATENCY_JOBS = Number(process.env.BENCH_FSYNC_LATENCY_JOBS ?? 100);
const BACKLOG_JOBS = Number(process.env.BENCH_FSYNC_BACKLOG_JOBS ?? 500);
const PARALLEL_JOBS = Number(process.env.BENCH_FSYNC_PARALLEL_JOBS ?? 1000);
const ORDER = [true, false, false, true];

const mean = (values: number[]) => round(values.reduce((a, b) => a + b, 0) / values.length, 2);
const change = (on: number, off: number) => `${off >= on ? '+' : ''}${round(((off - on) / on) * 100, 0)}%`;

/** Runs the benchmark; prints a table and writes `bench/results/core-fsync.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const latency: Array<LatencyFigures & { fsync: boolean }> = [];
  const backlog: ThroughputFigures[] = [];
  const parallel: ThroughputFigures[] = [];
  for (const fsync of ORDER) latency.push({ fsync, ...(await measureLatency({ jobs: LATENCY_JOBS, kind: 'library', fsync })) });
  for (const fsync of ORDER) backlog.push(await measureThroughput({ jobs: BACKLOG_JOBS, maxJobs: 1, command: ['true'], kind: 'library', fsync }));
  for (const fsync of ORDER) parallel.push(await measureThroughput({ jobs: PARALLEL_JOBS, maxJobs: -1, command: ['true'], kind: 'library', fsync }));

  const by = <T extends { fsync: boolean }>(runs: T[], fsync: boolean, pick: (r: T) => number) => mean(runs.filter((r) => r.fsync === fsync).map(pick));
  const means = {
    latencyP50Ms: { on: by(latency, true, (l) => l.latencyMs.p50), off: by(latency, false, (l) => l.latencyMs.p50) },
    latencyP99Ms: { on: by(latency, true, (l) => l.latencyMs.p99), off: by(latency, false, (l) => l.latencyMs.p99) },
    enqueueCallP50Ms: {
      on: by(latency, true, (l) => l.stepsMs['enqueue call (write + fsync)']!.p50),
      off: by(latency, false, (l) => l.stepsMs['enqueue call (write + fsync)']!.p50),
    },
    backlogJobsPerSecond: { on: by(backlog, true, (f) => f.jobsPerSecond), off: by(backlog, false, (f) => f.jobsPerSecond) },
    parallelJobsPerSecond: { on: by(parallel, true, (f) => f.jobsPerSecond), off: by(parallel, false, (f) => f.jobsPerSecond) },
  };
  const changes = Object.fromEntries(Object.entries(means).map(([k, m]) => [k, change(m.on, m.off)]));
  process.stdout.write(
    [
      'Core 5: the embedded queue with fsync on (default) and off, library agent process (built packages, no CLI output); runs ordered on, off, off, on',
      formatTable([
        ['latency run', 'jobs', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'enqueue call p50 ms'],
        ...latency.map((l) => [
          `fsync ${l.fsync ? 'on' : 'off'}`,
          l.jobs,
          l.latencyMs.p50,
          l.latencyMs.p90,
          l.latencyMs.p99,
          l.latencyMs.max,
          l.stepsMs['enqueue call (write + fsync)']!.p50,
        ]),
      ]),
      formatTable(backlogRows([...backlog, ...parallel])),
      formatTable([['mean of 2 runs', 'fsync on', 'fsync off', 'off vs on'], ...Object.entries(means).map(([k, m]) => [k, m.on, m.off, changes[k]!])]),
      '',
    ].join('\n'),
  );
  const result = {
    description: 'embedded queue fsync on vs off, on the latency and throughput workloads (library agent process)',
    method:
      'bench/lib/library-agent.mjs (createEmbeddedQueue({ fsync }) + createLocalProcessRunner + createAgent from packages/*/dist) in a child process; the latency case enqueues with the same fsync setting; same measurements as core-latency, core-backlog and core-parallel; each workload run on, off, off, on; means of the two runs per setting',
    latency,
    backlog,
    parallel,
    means,
    changeWithFsyncOff: changes,
    durationMs: Date.now() - started,
  };
  writeResult('core-fsync', result);
  return {
    ...result,
    summary: [
      {
        benchmark: 'core-fsync',
        figure: 'fsync off vs on: latency p50, backlog, parallel',
        value: `${changes.latencyP50Ms} / ${changes.backlogJobsPerSecond} / ${changes.parallelJobsPerSecond}`,
        target: 'informational',
        met: undefined,
      },
    ],
  };
}

runIfMain(import.meta.url, run);
