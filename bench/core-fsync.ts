/**
 * Core benchmark 5: what the embedded queue's fsync costs. The agent binary has no switch for it
 * (it always uses the default, fsync on), so this runs bench/lib/library-agent.mjs — the same built
 * libraries wired as the CLI wires them, minus the CLI's output — with fsync on and off, on the
 * latency and throughput workloads of core benchmarks 1–3 (fewer latency jobs).
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
const BACKLOG_JOBS = Number(process.env.BENCH_BACKLOG_JOBS ?? 500);
const PARALLEL_JOBS = Number(process.env.BENCH_PARALLEL_JOBS ?? 2000);

/** Runs the benchmark; prints a table and writes `bench/results/core-fsync.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const latency: Array<LatencyFigures & { fsync: boolean }> = [];
  const throughput: ThroughputFigures[] = [];
  for (const fsync of [true, false]) {
    latency.push({ fsync, ...(await measureLatency({ jobs: LATENCY_JOBS, kind: 'library', fsync })) });
    throughput.push(await measureThroughput({ jobs: BACKLOG_JOBS, maxJobs: 1, command: ['true'], kind: 'library', fsync }));
    throughput.push(await measureThroughput({ jobs: PARALLEL_JOBS, maxJobs: -1, command: ['true'], kind: 'library', fsync }));
  }
  const change = (on: number, off: number) => `${off >= on ? '+' : ''}${round(((off - on) / on) * 100, 0)}%`;
  const [latOn, latOff] = [latency[0]!, latency[1]!];
  const [backOn, parOn, backOff, parOff] = [throughput[0]!, throughput[1]!, throughput[2]!, throughput[3]!];
  process.stdout.write(
    [
      'Core 5: the embedded queue with fsync on (default) and off, library agent process (built packages, no CLI output)',
      formatTable([
        ['latency', 'jobs', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'enqueue call p50 ms'],
        ...latency.map((l) => [`fsync ${l.fsync ? 'on' : 'off'}`, l.jobs, l.latencyMs.p50, l.latencyMs.p90, l.latencyMs.p99, l.latencyMs.max, l.stepsMs['enqueue call (write + fsync)']!.p50]),
      ]),
      formatTable(backlogRows(throughput)),
      `fsync off vs on: latency p50 ${change(latOn.latencyMs.p50, latOff.latencyMs.p50)}, backlog jobs/s ${change(backOn.jobsPerSecond, backOff.jobsPerSecond)}, parallel jobs/s ${change(parOn.jobsPerSecond, parOff.jobsPerSecond)}`,
      '',
    ].join('\n'),
  );
  const result = {
    description: 'embedded queue fsync on vs off, on the latency and throughput workloads (library agent process)',
    method:
      'bench/lib/library-agent.mjs (createEmbeddedQueue({ fsync }) + createLocalProcessRunner + createAgent from packages/*/dist) in a child process; the latency case enqueues with the same fsync setting; same measurements as core-latency, core-backlog and core-parallel',
    latency,
    throughput,
    changeWithFsyncOff: {
      latencyP50: change(latOn.latencyMs.p50, latOff.latencyMs.p50),
      backlogJobsPerSecond: change(backOn.jobsPerSecond, backOff.jobsPerSecond),
      parallelJobsPerSecond: change(parOn.jobsPerSecond, parOff.jobsPerSecond),
    },
    durationMs: Date.now() - started,
  };
  writeResult('core-fsync', result);
  return {
    ...result,
    summary: [
      {
        benchmark: 'core-fsync',
        figure: 'fsync off vs on (latency p50 / backlog / parallel)',
        value: `${result.changeWithFsyncOff.latencyP50} / ${result.changeWithFsyncOff.backlogJobsPerSecond} / ${result.changeWithFsyncOff.parallelJobsPerSecond}`,
        target: 'informational',
        met: undefined,
      },
    ],
  };
}

runIfMain(import.meta.url, run);
