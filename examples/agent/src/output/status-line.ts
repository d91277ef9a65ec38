import type { Agent } from '@launch/core';
import type { LogFormat } from './logger.js';
import type { LineSink } from './sink.js';

/** W&B prints the agent's state every 300 s, every 20 s at verbosity 1 or more. */
export function statusIntervalMs(verbosity: number): number {
  return verbosity >= 1 ? 20_000 : 300_000;
}

/** One line saying what the agent is doing, in W&B's words. */
export function statusLine(agent: Pick<Agent, 'snapshot'>, queues: string[], format: LogFormat, now = Date.now()): string {
  const s = agent.snapshot();
  const max = s.maxJobs < 0 || !Number.isFinite(s.maxJobs) ? 'unlimited' : String(s.maxJobs);
  if (format === 'json') {
    return JSON.stringify({
      time: new Date(now).toISOString(),
      event: 'agent:state',
      status: s.status,
      queues,
      running: s.running.map((r) => r.item.id),
      maxJobs: s.maxJobs,
    });
  }
  return `launch: agent ${s.name ?? s.agentId ?? ''} ${s.status === 'RUNNING' || s.status === 'POLLING' ? 'polling on' : s.status.toLowerCase() + ','} queues ${queues.join(', ')}, running ${s.running.length} out of a maximum of ${max} jobs`;
}

/** Prints the status line periodically until the returned function is called. */
export function startStatusLines(
  agent: Pick<Agent, 'snapshot'>,
  options: { sink: LineSink; queues: string[]; format: LogFormat; intervalMs: number },
): () => void {
  const timer = setInterval(() => options.sink.write(statusLine(agent, options.queues, options.format)), options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
