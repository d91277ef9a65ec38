/**
 * `pnpm bench [selection…]`: runs the benchmarks in sequence (core ones first), prints a combined
 * summary table and writes `bench/results/summary.json`. Each benchmark also prints its own table
 * and writes `bench/results/<name>.json`.
 *
 * A selection is a group (`core`, `all`) or a benchmark name, with or without its `core-` prefix:
 *   pnpm bench                  everything
 *   pnpm bench core             core-latency, core-backlog, core-parallel, core-idle, core-fsync
 *   pnpm bench wandb kubernetes
 *   pnpm bench latency idle
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir, machineInfo, runIfMain } from './lib/results.js';
import { formatTable } from './lib/table.js';

/** One line of the combined summary. `met` is undefined for figures without a target. */
export interface SummaryRow {
  benchmark: string;
  figure: string;
  value: string;
  target: string;
  met: boolean | undefined;
}

interface Benchmark {
  name: string;
  group: 'core' | 'other';
  /** Short names accepted on the command line. */
  aliases: string[];
  load(): Promise<{ run(): Promise<Record<string, unknown>> }>;
  /** Summary rows for benchmarks whose result carries none. */
  summarize?(result: Record<string, unknown>): SummaryRow[];
}

const BENCHMARKS: Benchmark[] = [
  { name: 'core-latency', group: 'core', aliases: ['latency'], load: () => import('./core-latency.js') },
  { name: 'core-backlog', group: 'core', aliases: ['backlog'], load: () => import('./core-backlog.js') },
  { name: 'core-parallel', group: 'core', aliases: ['parallel', 'xargs'], load: () => import('./core-parallel.js') },
  { name: 'core-idle', group: 'core', aliases: ['idle'], load: () => import('./core-idle.js') },
  { name: 'core-fsync', group: 'core', aliases: ['fsync'], load: () => import('./core-fsync.js') },
  { name: 'azure-upload', group: 'other', aliases: ['azure'], load: () => import('./azure-upload.js') },
  { name: 'gcs-upload', group: 'other', aliases: ['gcs'], load: () => import('./gcs-upload.js') },
  { name: 's3-upload', group: 'other', aliases: ['s3'], load: () => import('./s3-upload.js') },
  { name: 'build-context', group: 'other', aliases: ['context', 'pack'], load: () => import('./build-context.js') },
  { name: 'build-cache-hit', group: 'other', aliases: ['cache-hit'], load: () => import('./build-cache-hit.js') },
  { name: 'docker-build-vs-cli', group: 'other', aliases: ['docker-build'], load: () => import('./docker-build-vs-cli.js') },
  {
    name: 'wandb-latency',
    group: 'other',
    aliases: ['wandb'],
    load: () => import('./wandb-latency.js'),
    summarize: (r) => [
      ...((r.latency ?? []) as Array<{ pollIntervalMs: number; p50Ms: number; p99Ms: number }>).map((l) => ({
        benchmark: 'wandb-latency',
        figure: `enqueue → start p50 / p99, poll ${l.pollIntervalMs / 1000} s`,
        value: `${l.p50Ms} / ${l.p99Ms} ms`,
        target: '',
        met: undefined,
      })),
      ...((r.idle ?? []) as Array<{ pollIntervalMs: number; requestsPerMinute: number }>).map((i) => ({
        benchmark: 'wandb-latency',
        figure: `idle GraphQL requests, poll ${i.pollIntervalMs / 1000} s`,
        value: `${i.requestsPerMinute}/min`,
        target: '',
        met: undefined,
      })),
    ],
  },
  { name: 'redaction', group: 'other', aliases: ['redact'], load: () => import('./redaction.js') },
  { name: 'wandb-job-resolve', group: 'other', aliases: ['job-resolve', 'jobs'], load: () => import('./wandb-job-resolve.js') },
  { name: 'cloud-idle-rss', group: 'other', aliases: ['cloud-idle'], load: () => import('./cloud-idle-rss.js') },
  { name: 'queue-scale', group: 'other', aliases: ['scale'], load: () => import('./queue-scale.js') },
  {
    name: 'kubernetes',
    group: 'other',
    aliases: ['k8s'],
    load: () => import('./kubernetes.js'),
    summarize: (r) => [
      {
        benchmark: 'kubernetes',
        figure: `API requests per job (${String(r.jobs)} jobs)`,
        value: String(r.apiRequestsPerJob),
        target: '≤ 5',
        met: Number(r.apiRequestsPerJob) <= 5,
      },
      {
        benchmark: 'kubernetes',
        figure: 'agent peak RSS / CPU',
        value: `${String(r.agentPeakRssMiB)} MiB / ${String(r.agentCpuSeconds)} s`,
        target: '',
        met: undefined,
      },
    ],
  },
];

/** The benchmarks a command line selects, in the order above (core first). */
export function select(args: string[]): Benchmark[] {
  const wanted = args.length === 0 ? ['all'] : args;
  const chosen = new Set<Benchmark>();
  for (const arg of wanted) {
    const a = arg.toLowerCase();
    const matches =
      a === 'all'
        ? BENCHMARKS
        : a === 'core'
          ? BENCHMARKS.filter((b) => b.group === 'core')
          : BENCHMARKS.filter((b) => b.name === a || b.aliases.includes(a) || b.name === `core-${a}`);
    if (matches.length === 0) {
      const names = ['all', 'core', ...BENCHMARKS.flatMap((b) => [b.name, ...b.aliases])];
      throw new Error(`unknown benchmark "${arg}": expected one of ${names.join(', ')}`);
    }
    for (const m of matches) chosen.add(m);
  }
  return BENCHMARKS.filter((b) => chosen.has(b));
}

const mark = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'NOT met');

export async function main(args: string[]): Promise<number> {
  const chosen = select(args);
  const started = Date.now();
  const rows: SummaryRow[] = [];
  const runs: Array<{ name: string; ok: boolean; durationMs: number; error?: string }> = [];
  for (const b of chosen) {
    process.stdout.write(`\n=== ${b.name} ===\n`);
    const t0 = Date.now();
    try {
      const result = await (await b.load()).run();
      const own = Array.isArray(result.summary) ? (result.summary as SummaryRow[]) : (b.summarize?.(result) ?? []);
      rows.push(...own);
      runs.push({ name: b.name, ok: true, durationMs: Date.now() - t0 });
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.stderr.write(`${b.name} failed: ${message}\n`);
      rows.push({ benchmark: b.name, figure: 'FAILED', value: message.split('\n')[0] ?? '', target: '', met: false });
      runs.push({ name: b.name, ok: false, durationMs: Date.now() - t0, error: message });
    }
  }
  process.stdout.write(
    [
      '',
      '=== summary ===',
      formatTable([['benchmark', 'figure', 'value', 'target', ''], ...rows.map((r) => [r.benchmark, r.figure, r.value, r.target, mark(r.met)])]),
      `${chosen.length} benchmarks in ${((Date.now() - started) / 1000).toFixed(0)} s (${runs.map((r) => `${r.name} ${(r.durationMs / 1000).toFixed(0)} s`).join(', ')})`,
      '',
    ].join('\n'),
  );
  const summary = { selected: chosen.map((b) => b.name), rows, runs, durationMs: Date.now() - started, machine: machineInfo() };
  mkdirSync(join(benchDir, 'results'), { recursive: true });
  writeFileSync(join(benchDir, 'results', 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return runs.every((r) => r.ok) ? 0 : 1;
}

runIfMain(import.meta.url, async () => {
  const code = await main(process.argv.slice(2));
  if (code !== 0) process.exit(code);
});
