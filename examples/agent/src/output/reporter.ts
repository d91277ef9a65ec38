import type { AgentEventName, AgentEvents } from '@launch/core';
import type { Palette } from './color.js';
import type { LogFormat } from './logger.js';
import type { LineSink } from './sink.js';
import { formatDuration } from './time.js';

/** The part of `Agent` the reporter needs: typed events. */
export interface EventSource {
  on<E extends AgentEventName>(event: E, listener: (payload: AgentEvents[E]) => void): () => void;
}

export interface ReporterOptions {
  sink: LineSink;
  format: LogFormat;
  colors: Palette;
  /** Echo the jobs' own output, prefixed by the item id (`-v`, always in the demo). */
  showLogs: boolean;
  now?: () => number;
}

export interface Reporter {
  /** Writes any partial log lines still buffered. */
  flush(): void;
  detach(): void;
}

/**
 * Turns agent events into one progress line per job event (human) or one JSON object per line.
 * What a person sees is decided here, never in the libraries.
 */
export function attachReporter(agent: EventSource, options: ReporterOptions): Reporter {
  const now = options.now ?? Date.now;
  const c = options.colors;
  const claimedAt = new Map<string, number>();
  const exitCodes = new Map<string, number | null | undefined>();
  const partial = new Map<string, string>();
  const offs: (() => void)[] = [];

  // Continuation lines (a failure's log tail) are indented under their event line.
  const human = (itemId: string, text: string) => options.sink.write(`${c.dim('launch:')} ${c.bold(`[${itemId}]`)} ${text.replace(/\n/g, '\n    ')}`);
  const json = (event: string, fields: Record<string, unknown>) =>
    options.sink.write(JSON.stringify({ time: new Date(now()).toISOString(), event, ...fields }));
  const elapsed = (itemId: string) => {
    const start = claimedAt.get(itemId);
    return start === undefined ? undefined : now() - start;
  };
  const on = <E extends AgentEventName>(event: E, fn: (p: AgentEvents[E]) => void) => offs.push(agent.on(event, fn));

  const logLine = (itemId: string, stream: string, line: string) => {
    if (options.format === 'json') json('run:log', { item: itemId, stream, line });
    else options.sink.write(`${c.dim(`${itemId} |`)} ${line}`);
  };
  const flushItem = (itemId: string) => {
    for (const stream of ['stdout', 'stderr']) {
      const key = `${itemId}\u0000${stream}`;
      const rest = partial.get(key);
      if (rest) logLine(itemId, stream, rest);
      partial.delete(key);
    }
  };

  on('agent:registered', ({ agentId, name }) => {
    if (options.format === 'json') json('agent:registered', { agentId, name });
    else options.sink.write(`${c.dim('launch:')} agent ${c.bold(name)} registered (id ${agentId})`);
  });
  on('item:claimed', ({ item }) => {
    claimedAt.set(item.id, now());
    if (options.format === 'json') json('item:claimed', { item: item.id, queue: item.queue, priority: item.priority });
    else human(item.id, `claimed from queue ${item.queue}${item.priority ? ` (priority ${item.priority})` : ''}`);
  });
  on('build:finished', ({ item, runId, imageUri, cached }) => {
    if (options.format === 'json') json('build:finished', { item: item.id, runId, imageUri, cached });
    else human(item.id, `image ${imageUri}${cached ? ' (cached)' : ' built'}`);
  });
  on('run:submitted', ({ item, runId, runner, backendId }) => {
    if (options.format === 'json') json('run:submitted', { item: item.id, runId, runner, backendId });
    else human(item.id, `submitted run ${runId} to ${runner} (${backendId})`);
  });
  on('run:state', ({ item, runId, state, status }) => {
    if (status.exitCode !== undefined) exitCodes.set(item.id, status.exitCode);
    if (options.format === 'json') json('run:state', { item: item.id, runId, state, exitCode: status.exitCode });
    else if (state === 'running' || state === 'starting' || state === 'stopping') human(item.id, c.blue(state));
  });
  // Only when shown: the agent asks runners to stream output (a connection per Kubernetes run) only if someone listens.
  if (options.showLogs)
    on('run:log', ({ item, chunk }) => {
      const key = `${item.id}\u0000${chunk.stream}`;
      const lines = ((partial.get(key) ?? '') + chunk.text).split(/\r?\n/);
      partial.set(key, lines.pop() ?? '');
      for (const line of lines) logLine(item.id, chunk.stream, line);
    });
  on('run:warning', ({ item, runId, message }) => {
    if (options.format === 'json') json('run:warning', { item: item.id, runId, message });
    else human(item.id, c.yellow(`warning: ${message}`));
  });
  on('item:finished', ({ item, runId, state, status }) => {
    flushItem(item.id);
    const ms = elapsed(item.id);
    const exitCode = status.exitCode ?? exitCodes.get(item.id);
    if (options.format === 'json') json('item:finished', { item: item.id, runId, state, exitCode, durationMs: ms });
    else {
      const paint = state === 'finished' ? c.green : state === 'failed' ? c.red : c.yellow;
      const diag = status.diagnosis ? ` — ${status.diagnosis.category}: ${status.diagnosis.message} (hint: ${status.diagnosis.hint})` : '';
      human(item.id, `${paint(state)}${ms === undefined ? '' : ` in ${formatDuration(ms)}`}${exitCode == null ? '' : ` (exit ${exitCode})`}${diag}`);
    }
    claimedAt.delete(item.id);
  });
  on('item:failed', ({ item, runId, stage, message }) => {
    flushItem(item.id);
    const ms = elapsed(item.id);
    const exitCode = exitCodes.get(item.id);
    if (options.format === 'json') json('item:failed', { item: item.id, runId, stage, message, exitCode, durationMs: ms });
    else
      human(
        item.id,
        `${c.red('failed')} at stage ${stage}${ms === undefined ? '' : ` after ${formatDuration(ms)}`}${exitCode == null ? '' : ` (exit ${exitCode})`}: ${message}`,
      );
    claimedAt.delete(item.id);
  });
  on('item:requeued', ({ item, runId, newItemId, resumeCount }) => {
    // Its last partial line goes out now, while the job's secrets are still known to the redactor.
    flushItem(item.id);
    if (options.format === 'json') json('item:requeued', { item: item.id, runId, newItemId, resumeCount });
    else human(item.id, c.yellow(`requeued as ${newItemId} (resume ${resumeCount})`));
  });
  on('agent:error', ({ error, where }) => {
    if (options.format === 'json') json('agent:error', { where, message: error.message });
    else options.sink.write(`${c.dim('launch:')} ${c.red('error')} in ${where}: ${error.message}`);
  });
  on('agent:stopped', ({ reason, cause }) => {
    if (options.format === 'json') json('agent:stopped', { reason, cause });
    else options.sink.write(`${c.dim('launch:')} agent stopped (${reason})`);
  });

  return {
    flush: () => [...new Set([...partial.keys()].map((k) => k.split('\u0000')[0]!))].forEach(flushItem),
    detach: () => offs.splice(0).forEach((off) => off()),
  };
}
