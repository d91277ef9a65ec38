/**
 * Core benchmark 2: a backlog of 500 trivial jobs (`true`) with `max_jobs: 1`, drained by the real
 * agent binary (defaults: fsync on). Jobs per second from the agent's registration to the last
 * job's report. W&B's agent, with max_jobs 1, starts one job per 10 s poll at best and in practice one
 * every ~20 s (0.05/s).
 *
 *   npx tsx bench/core-backlog.ts            (after `pnpm build`)
 */
import { measureThroughput, type ThroughputFigures } from './lib/throughput.js';
import { runIfMain, writeResult } from './lib/results.js';
import { formatTable, verdict } from './lib/table.js';

const JOBS = Number(process.env.BENCH_BACKLOG_JOBS ?? 500);
/** Issue 8's target. */
export const BACKLOG_TARGET_PER_SECOND = 200;

export function backlogRows(figures: ThroughputFigures[]): Array<Array<string | number>> {
  return [
    ['agent', 'jobs', 'max_jobs', 'fsync', 'jobs/s', 'elapsed s', 'incl. start-up s', 'peak running', 'agent CPU ms/job', 'gap p50/p99 ms'],
    ...figures.map((f) => [
      f.kind,
      f.jobs,
      f.maxJobs,
      f.fsync ? 'on' : 'off',
      f.jobsPerSecond,
      (f.elapsedMs / 1000).toFixed(2),
      (f.wallWithStartupMs / 1000).toFixed(2),
      f.peakConcurrent,
      f.agentCpuMsPerJob,
      `${f.gapMs.p50}/${f.gapMs.p99}`,
    ]),
  ];
}

/** Runs the benchmark; prints a table and writes `bench/results/core-backlog.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const f = await measureThroughput({ jobs: JOBS, maxJobs: 1, command: ['true'] });
  const met = f.jobsPerSecond >= BACKLOG_TARGET_PER_SECOND;
  process.stdout.write(
    [
      `Core 2: backlog of ${JOBS} trivial jobs (true), max_jobs 1, agent binary`,
      formatTable(backlogRows([f])),
      `target ≥ ${BACKLOG_TARGET_PER_SECOND} jobs/s: ${verdict(met)} (W&B's agent: ~0.05 jobs/s with max_jobs 1)`,
      '',
    ].join('\n'),
  );
  const result = {
    description: `backlog of ${JOBS} trivial jobs with max_jobs 1 through the agent binary`,
    method:
      "the bench process enqueues every job first (not timed); then node examples/agent/dist/cli.js run --max-jobs 1 --exit-when-idle drains the queue; jobs/s = jobs / (last item:finished − agent:registered), from the agent's JSON progress lines",
    ...f,
    target: { jobsPerSecond: BACKLOG_TARGET_PER_SECOND },
    met,
    durationMs: Date.now() - started,
  };
  writeResult('core-backlog', result);
  return {
    ...result,
    summary: [{ benchmark: 'core-backlog', figure: 'jobs/s, max_jobs 1', value: `${f.jobsPerSecond}/s`, target: `≥ ${BACKLOG_TARGET_PER_SECOND}/s`, met }],
  };
}

runIfMain(import.meta.url, run);
