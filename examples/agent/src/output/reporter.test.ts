import { describe, expect, it } from 'vitest';
import type { AgentEventName, AgentEvents, QueueItem, RunStatus } from '@launch/core';
import { palette } from './color.js';
import { attachReporter, type EventSource } from './reporter.js';
import type { LineSink } from './sink.js';

/** A minimal typed emitter: the reporter only needs `on`. */
function emitter() {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const source: EventSource = {
    on(event, fn) {
      const set = listeners.get(event) ?? new Set();
      set.add(fn as (p: unknown) => void);
      listeners.set(event, set);
      return () => set.delete(fn as (p: unknown) => void);
    },
  };
  const emit = <E extends AgentEventName>(event: E, payload: AgentEvents[E]) => listeners.get(event)?.forEach((fn) => fn(payload));
  return { source, emit, count: () => [...listeners.values()].reduce((n, s) => n + s.size, 0) };
}

function collect(): LineSink & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (l) => void lines.push(l), close: async () => {} };
}

const item: QueueItem = { id: 'item-1', queue: 'default', spec: {}, priority: 'high' };
const status = (state: RunStatus['state'], exitCode?: number): RunStatus => ({ state, messages: [], exitCode });

describe('reporter', () => {
  it('prints one human line per job event with duration and exit code', () => {
    let t = 1000;
    const { source, emit } = emitter();
    const sink = collect();
    attachReporter(source, { sink, format: 'human', colors: palette(false), showLogs: false, now: () => t });
    emit('item:claimed', { item });
    emit('run:submitted', { item, runId: 'r1', runner: 'local-process', backendId: '4242' });
    emit('run:state', { item, runId: 'r1', state: 'running', status: status('running') });
    emit('run:warning', { item, runId: 'r1', message: 'slow disk' });
    t = 3500;
    emit('item:finished', { item, runId: 'r1', state: 'finished', status: status('finished', 0) });
    expect(sink.lines).toEqual([
      'launch: [item-1] claimed from queue default (priority high)',
      'launch: [item-1] submitted run r1 to local-process (4242)',
      'launch: [item-1] running',
      'launch: [item-1] warning: slow disk',
      'launch: [item-1] finished in 2.5s (exit 0)',
    ]);
  });

  it('reports a failure with its stage and the exit code seen last', () => {
    const { source, emit } = emitter();
    const sink = collect();
    attachReporter(source, { sink, format: 'human', colors: palette(false), showLogs: false, now: () => 0 });
    emit('item:claimed', { item });
    emit('run:state', { item, runId: 'r1', state: 'failed', status: status('failed', 3) });
    emit('item:failed', { item, runId: 'r1', stage: 'run', message: 'exited with code 3' });
    expect(sink.lines.at(-1)).toBe('launch: [item-1] failed at stage run after 0ms (exit 3): exited with code 3');
  });

  it('prefixes job output with the item id, joining lines split across chunks', () => {
    const { source, emit } = emitter();
    const sink = collect();
    const r = attachReporter(source, { sink, format: 'human', colors: palette(false), showLogs: true });
    emit('run:log', { item, runId: 'r1', chunk: { stream: 'stdout', text: 'step 1\nst' } });
    emit('run:log', { item, runId: 'r1', chunk: { stream: 'stdout', text: 'ep 2\npartial' } });
    expect(sink.lines).toEqual(['item-1 | step 1', 'item-1 | step 2']);
    r.flush();
    expect(sink.lines.at(-1)).toBe('item-1 | partial');
  });

  it('hides job output unless asked', () => {
    const { source, emit } = emitter();
    const sink = collect();
    attachReporter(source, { sink, format: 'human', colors: palette(false), showLogs: false });
    emit('run:log', { item, runId: 'r1', chunk: { stream: 'stdout', text: 'hello\n' } });
    expect(sink.lines).toEqual([]);
  });

  it('writes one JSON object per line in json format', () => {
    const { source, emit } = emitter();
    const sink = collect();
    attachReporter(source, { sink, format: 'json', colors: palette(false), showLogs: true, now: () => 0 });
    emit('item:claimed', { item });
    emit('run:log', { item, runId: 'r1', chunk: { stream: 'stderr', text: 'oops\n' } });
    emit('item:failed', { item, stage: 'agent', message: 'bad spec' });
    const parsed = sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.event)).toEqual(['item:claimed', 'run:log', 'item:failed']);
    expect(parsed[1]).toMatchObject({ item: 'item-1', stream: 'stderr', line: 'oops' });
    expect(parsed[2]).toMatchObject({ stage: 'agent', message: 'bad spec' });
  });

  it('detach removes every listener', () => {
    const { source, count } = emitter();
    const r = attachReporter(source, { sink: collect(), format: 'human', colors: palette(false), showLogs: false });
    expect(count()).toBeGreaterThan(0);
    r.detach();
    expect(count()).toBe(0);
  });
});
