/**
 * Core benchmark 4: an idle agent — the real binary (`node examples/agent/dist/cli.js --state-dir
 * <tmp>`, every other option at its default) on an empty embedded queue — over 60 s: its RSS
 * (/proc/<pid>/status VmRSS, sampled every second) and CPU (utime + stime from /proc/<pid>/stat,
 * over the window, as a percentage of one core, and per 10 s slice). The window starts 2 s after
 * registration, so start-up (module loading, JIT) is not counted; V8's one-time memory-reducing GC,
 * some 15-35 s after start-up, falls inside it (the slices show it, and the RSS falling to its minimum).
 *
 *   npx tsx bench/core-idle.ts               (after `pnpm build`)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cliPath } from './lib/agent-process.js';
import { sleep } from './lib/clock.js';
import { cpuSeconds, rssBytes } from './lib/proc.js';
import { repoRoot, runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable, verdict } from './lib/table.js';

const WINDOW_MS = Number(process.env.BENCH_IDLE_MS ?? 60_000);
/** Issue 8's targets. */
export const IDLE_TARGETS = { rssMiB: 60, cpuPercent: 0.1 };

/** Runs the benchmark; prints a table and writes `bench/results/core-idle.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const stateDir = mkdtempSync(join(tmpdir(), 'launch-bench-idle-'));
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key.startsWith('WANDB_')) delete env[key];
  // Exactly what a user runs: the default command and options, human output (to a pipe).
  const child = spawn(process.execPath, [cliPath, '--state-dir', stateDir], { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const output: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the agent did not start in 30 s:\n${output.join('\n')}`)), 30_000);
      child.once('exit', (code) => reject(new Error(`the agent exited (${code}):\n${output.join('\n')}`)));
      createInterface(child.stderr!).on('line', (line) => {
        output.push(line);
        // The human format announces registration with the agent's name.
        if (/registered|polling/i.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await sleep(2000);
    const pid = child.pid!;
    const cpuBefore = cpuSeconds(pid);
    const rss: number[] = [rssBytes(pid)];
    // CPU seconds at the end of each 10 s slice: shows when the CPU was spent (a one-time GC, or every slice).
    const slices: number[] = [];
    let sliceStart = cpuBefore;
    const t0 = performance.now();
    for (let elapsed = 0; elapsed < WINDOW_MS; elapsed = performance.now() - t0) {
      await sleep(Math.min(1000, WINDOW_MS - elapsed));
      rss.push(rssBytes(pid));
      if (rss.length % 10 === 1 || performance.now() - t0 >= WINDOW_MS) {
        const at = cpuSeconds(pid);
        slices.push(round(at - sliceStart, 3));
        sliceStart = at;
      }
    }
    const windowMs = performance.now() - t0;
    const cpu = cpuSeconds(pid) - cpuBefore;
    const mib = (b: number) => round(b / 1024 / 1024, 1);
    const figures = {
      windowMs: Math.round(windowMs),
      rssMiB: { start: mib(rss[0]!), end: mib(rss[rss.length - 1]!), min: mib(Math.min(...rss)), max: mib(Math.max(...rss)) },
      cpuSeconds: round(cpu, 3),
      cpuPercent: round((cpu * 1000 * 100) / windowMs, 3),
      cpuSecondsPer10s: slices,
    };
    const rssMet = figures.rssMiB.max <= IDLE_TARGETS.rssMiB;
    const cpuMet = figures.cpuPercent <= IDLE_TARGETS.cpuPercent;
    process.stdout.write(
      [
        `Core 4: idle agent binary over ${Math.round(windowMs / 1000)} s (empty embedded queue, default options)`,
        formatTable([
          ['', 'value', 'target', ''],
          ['RSS max MiB', figures.rssMiB.max, `≤ ${IDLE_TARGETS.rssMiB}`, verdict(rssMet)],
          ['RSS start / end / min MiB', `${figures.rssMiB.start} / ${figures.rssMiB.end} / ${figures.rssMiB.min}`, '', ''],
          ['CPU % of one core', figures.cpuPercent, `≤ ${IDLE_TARGETS.cpuPercent}`, verdict(cpuMet)],
          ['CPU seconds', figures.cpuSeconds, '', ''],
          ['CPU seconds per 10 s', figures.cpuSecondsPer10s.join(' '), '', ''],
        ]),
        '',
      ].join('\n'),
    );
    const result = {
      description: 'idle agent binary on an empty embedded queue: RSS and CPU',
      method: `node examples/agent/dist/cli.js --state-dir <tmp> (default options); window starts 2 s after registration; RSS = /proc/<pid>/status VmRSS every 1 s; CPU = utime + stime from /proc/<pid>/stat over the window, and per 10 s slice`,
      ...figures,
      targets: IDLE_TARGETS,
      met: { rss: rssMet, cpu: cpuMet },
      durationMs: Date.now() - started,
    };
    writeResult('core-idle', result);
    return {
      ...result,
      summary: [
        { benchmark: 'core-idle', figure: 'idle RSS (max)', value: `${figures.rssMiB.max} MiB`, target: `≤ ${IDLE_TARGETS.rssMiB} MiB`, met: rssMet },
        { benchmark: 'core-idle', figure: 'idle CPU', value: `${figures.cpuPercent} %`, target: `≤ ${IDLE_TARGETS.cpuPercent} %`, met: cpuMet },
      ],
    };
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(stateDir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
