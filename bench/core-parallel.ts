/**
 * Core benchmark 3: 2,000 trivial jobs (`true`) with `max_jobs: -1` through the real agent binary
 * (defaults: fsync on), against `xargs -P` spawning the same 2,000 commands in the same run.
 *
 * xargs is timed at -P <nproc> and at -P 0 (as many at once as possible); the faster of the two is
 * the baseline, so the ratio is against the best a plain process spawner does on this machine.
 *
 *   npx tsx bench/core-parallel.ts           (after `pnpm build`)
 */
import { execFile, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { backlogRows } from './core-backlog.js';
import { wallMs } from './lib/clock.js';
import { measureThroughput } from './lib/throughput.js';
import { benchDir, runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

const JOBS = Number(process.env.BENCH_PARALLEL_JOBS ?? 2000);
export const PARALLEL_TARGET_RATIO = 0.5;

export interface XargsFigures {
  parallelism: string;
  elapsedMs: number;
  jobsPerSecond: number;
}

/** Times `seq <jobs> | xargs -P <p> -n1 true` (each command gets one number argument, which `true` ignores). */
export async function timeXargs(jobs: number, parallelism: number): Promise<XargsFigures> {
  const started = wallMs();
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('sh', ['-c', `seq ${jobs} | xargs -P ${parallelism} -n1 true`], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`xargs exited with ${code}`);
  const elapsedMs = wallMs() - started;
  return { parallelism: String(parallelism), elapsedMs: Math.round(elapsedMs), jobsPerSecond: round((jobs * 1000) / elapsedMs, 1) };
}

/** Node's own spawn ceiling at this many children at once: bench/lib/node-spawn.mjs (no queue, no agent). */
const NODE_SPAWN_PARALLELISM = 8;

/** Times bench/lib/node-spawn.mjs: one Node event loop spawning `true` as the local-process runner does. */
export async function timeNodeSpawn(jobs: number, parallelism: number): Promise<XargsFigures> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(benchDir, 'lib/node-spawn.mjs'), String(jobs), String(parallelism)]);
  const elapsedMs = (JSON.parse(stdout) as { elapsedMs: number }).elapsedMs;
  return { parallelism: String(parallelism), elapsedMs: Math.round(elapsedMs), jobsPerSecond: round((jobs * 1000) / elapsedMs, 1) };
}

/** Runs the benchmark; prints a table and writes `bench/results/core-parallel.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const cores = availableParallelism();
  const xargsBefore = [await timeXargs(JOBS, cores), await timeXargs(JOBS, 0)];
  const f = await measureThroughput({ jobs: JOBS, maxJobs: -1, command: ['true'] });
  // Again after the agent, so a machine that got busier or quieter meanwhile shows up in the spread.
  const xargsAfter = [await timeXargs(JOBS, cores), await timeXargs(JOBS, 0)];
  const xargs = [...xargsBefore, ...xargsAfter];
  const nodeSpawn = await timeNodeSpawn(JOBS, NODE_SPAWN_PARALLELISM);
  const best = xargs.reduce((a, b) => (b.jobsPerSecond > a.jobsPerSecond ? b : a));
  const ratio = round(f.jobsPerSecond / best.jobsPerSecond, 2);
  const met = ratio >= PARALLEL_TARGET_RATIO;
  process.stdout.write(
    [
      `Core 3: ${JOBS} trivial jobs (true), max_jobs -1, agent binary vs xargs -P`,
      formatTable(backlogRows([f])),
      formatTable([
        ['baseline', 'elapsed s', 'jobs/s'],
        ...xargs.map((x, i) => [`xargs -P ${x.parallelism}${i < 2 ? ' (before)' : ' (after)'}`, (x.elapsedMs / 1000).toFixed(2), x.jobsPerSecond]),
        [`node spawn loop, ${nodeSpawn.parallelism} at once (no agent)`, (nodeSpawn.elapsedMs / 1000).toFixed(2), nodeSpawn.jobsPerSecond],
      ]),
      `ratio agent / best xargs = ${f.jobsPerSecond} / ${best.jobsPerSecond} = ${ratio}; target ≥ ${PARALLEL_TARGET_RATIO}: ${verdict(met)}`,
      `(Node's child_process alone reaches ${round(nodeSpawn.jobsPerSecond / best.jobsPerSecond, 2)} of xargs here; the agent reaches ${round(f.jobsPerSecond / nodeSpawn.jobsPerSecond, 2)} of that)`,
      '',
    ].join('\n'),
  );
  const result = {
    description: `${JOBS} trivial jobs with max_jobs -1 through the agent binary, against xargs -P`,
    method: `the bench process enqueues every job first (not timed); node examples/agent/dist/cli.js run --max-jobs -1 --exit-when-idle drains it; jobs/s = jobs / (last item:finished − agent:registered). Baseline: seq ${JOBS} | xargs -P {nproc=${cores}, 0} -n1 true, timed before and after the agent run; the fastest of the four is the baseline. Also for reference: bench/lib/node-spawn.mjs (one Node event loop spawning true with the runner's spawn options, ${NODE_SPAWN_PARALLELISM} at once), the ceiling of child_process on this machine`,
    agent: f,
    xargs,
    baseline: best,
    nodeSpawn,
    ratio,
    target: { ratio: PARALLEL_TARGET_RATIO },
    met,
    durationMs: Date.now() - started,
  };
  writeResult('core-parallel', result);
  return {
    ...result,
    summary: [
      { benchmark: 'core-parallel', figure: `jobs/s, max_jobs -1 (xargs ${best.jobsPerSecond}/s)`, value: `${f.jobsPerSecond}/s`, target: '', met: undefined },
      { benchmark: 'core-parallel', figure: 'ratio to xargs -P', value: String(ratio), target: `≥ ${PARALLEL_TARGET_RATIO}`, met },
    ],
  };
}

runIfMain(import.meta.url, run);
