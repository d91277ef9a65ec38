import { startAgentProcess } from './agent-process.js';
import { wallMs } from './clock.js';
import { cpuSeconds } from './proc.js';
import { commandSpec, fill, openBenchQueue } from './queue.js';
import { distribution, round } from './stats.js';

export interface ThroughputOptions {
  jobs: number;
  maxJobs: number;
  /** The job's command, run without a shell. */
  command: string[];
  kind?: 'binary' | 'library';
  fsync?: boolean;
  nodeArgs?: string[];
  timeoutMs?: number;
}

export interface ThroughputFigures {
  jobs: number;
  maxJobs: number;
  kind: 'binary' | 'library';
  fsync: boolean;
  /** The agent registered → the last job reported done (the agent's own timestamps). */
  elapsedMs: number;
  jobsPerSecond: number;
  /** Process spawn → the agent exited by itself (`--exit-when-idle`), Node start-up included. */
  wallWithStartupMs: number;
  /** Most jobs running at once (submitted, not yet reported). */
  peakConcurrent: number;
  /** Agent process CPU (user + system) over the run, and per job. */
  agentCpuSeconds: number;
  agentCpuMsPerJob: number;
  /** Time between consecutive job ends (ms). */
  gapMs: ReturnType<typeof distribution>;
}

/**
 * Fills a fresh embedded queue with `jobs` copies of `command`, then starts an agent process on it
 * with `--exit-when-idle` and measures how fast the backlog drains. Every job must finish with exit 0.
 */
export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputFigures> {
  const kind = options.kind ?? 'binary';
  const bq = openBenchQueue(`throughput-${options.jobs}`);
  try {
    const ids = await fill(bq.queue, options.jobs, commandSpec(...options.command));
    const spawnedAt = wallMs();
    const agent = startAgentProcess({
      stateDir: bq.dir,
      maxJobs: options.maxJobs,
      kind,
      fsync: options.fsync,
      exitWhenIdle: true,
      nodeArgs: options.nodeArgs,
    });
    try {
      const registered = await agent.waitFor((e) => e.event === 'agent:registered', 30_000, 'the agent to register');
      const cpuAtStart = cpuSeconds(agent.pid);
      const ended = () => agent.count('item:finished') + agent.count('item:failed');
      const last = await agent.waitFor(() => ended() >= options.jobs, options.timeoutMs ?? 180_000, `${options.jobs} jobs to end`);
      const agentCpu = cpuSeconds(agent.pid) - cpuAtStart;
      const failed = agent.events.filter((e) => e.event === 'item:failed');
      if (failed.length > 0) throw new Error(`${failed.length} jobs failed, e.g. ${String(failed[0]!.message)}`);
      const nonZero = agent.events.filter((e) => e.event === 'item:finished' && e.exitCode !== 0);
      if (nonZero.length > 0) throw new Error(`${nonZero.length} jobs ended with a non-zero exit code`);
      const exitCode = await Promise.race([agent.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
      if (exitCode !== 0) throw new Error(`the agent did not exit cleanly when idle (${exitCode})\n${agent.otherOutput()}`);
      const exitedAt = wallMs();
      const counts = await bq.queue.counts({ queue: 'default' });
      if (counts.done !== ids.length || counts.queued !== 0 || counts.claimed !== 0) {
        throw new Error(`queue not drained: ${JSON.stringify(counts)} for ${ids.length} jobs`);
      }
      let running = 0;
      let peak = 0;
      const ends: number[] = [];
      for (const e of agent.events) {
        if (e.event === 'run:submitted') peak = Math.max(peak, ++running);
        if (e.event === 'item:finished' || e.event === 'item:failed') {
          running--;
          ends.push(e.time);
        }
      }
      const elapsedMs = last.time - registered.time;
      return {
        jobs: options.jobs,
        maxJobs: options.maxJobs,
        kind,
        fsync: options.fsync ?? true,
        elapsedMs,
        jobsPerSecond: round((options.jobs * 1000) / elapsedMs, 1),
        wallWithStartupMs: Math.round(exitedAt - spawnedAt),
        peakConcurrent: peak,
        agentCpuSeconds: round(agentCpu, 2),
        agentCpuMsPerJob: round((agentCpu * 1000) / options.jobs, 2),
        gapMs: distribution(
          ends.slice(1).map((t, i) => t - ends[i]!),
          1,
        ),
      };
    } finally {
      await agent.stop();
    }
  } finally {
    await bq.close();
  }
}
