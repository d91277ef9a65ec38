import type { Counter, Histogram } from 'prom-client';
import type { QueueItem, QueueSource } from '@launch/core';

/** A pop that has not returned yet. */
export interface PendingPop {
  queue: string;
  /** When it started (ms, the metrics' clock). */
  startedAt: number;
  /** How long it has been pending (ms). */
  ageMs: number;
}

/** The metrics an instrumented source writes to (made by `createLaunchMetrics`). */
export interface SourceInstruments {
  now: () => number;
  pops: Counter<'queue' | 'result'>;
  popDuration: Histogram<'queue'>;
  requestDuration: Histogram<'source' | 'operation'>;
  errors: Counter<'source' | 'operation'>;
  pending: Map<number, Omit<PendingPop, 'ageMs'>>;
}

/** The `QueueSource` calls that are timed and counted; `subscribe` and `close` are passed through untouched. */
const OPERATIONS = new Set<string>([
  'register',
  'pop',
  'ack',
  'fail',
  'warn',
  'finish',
  'release',
  'requeue',
  'updateAgentStatus',
  'shouldStop',
  'isRunStopped',
  'heartbeat',
]);

let nextPop = 0;

/**
 * A view of `source` whose calls are timed and whose failures are counted by operation. It is a Proxy,
 * so every other property (capabilities, `subscribe`, an embedded queue's `enqueue`, …) passes through,
 * and an optional method the source lacks stays absent (the agent checks for `heartbeat`, `release`, …).
 */
export function instrumentQueueSource<S extends QueueSource>(source: S, m: SourceInstruments): S {
  const wrapped = new Map<PropertyKey, unknown>();
  const sourceName = String(source.name);

  const timed = (operation: string, fn: (...args: unknown[]) => Promise<unknown>) =>
    async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const start = m.now();
      const isPop = operation === 'pop';
      const queue = isPop ? String(args[0]) : '';
      const popId = nextPop++;
      if (isPop) m.pending.set(popId, { queue, startedAt: start });
      try {
        const result = await fn.apply(source, args);
        const secs = Math.max(0, m.now() - start) / 1000;
        m.requestDuration.observe({ source: sourceName, operation }, secs);
        if (isPop) {
          m.popDuration.observe({ queue }, secs);
          m.pops.inc({ queue, result: (result as QueueItem | null) ? 'item' : 'empty' });
        }
        return result;
      } catch (error) {
        m.requestDuration.observe({ source: sourceName, operation }, Math.max(0, m.now() - start) / 1000);
        m.errors.inc({ source: sourceName, operation });
        if (isPop) m.pops.inc({ queue, result: 'error' });
        throw error;
      } finally {
        if (isPop) m.pending.delete(popId);
      }
    };

  return new Proxy(source, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let w = wrapped.get(prop);
      if (w === undefined) {
        const fn = value as (...args: unknown[]) => Promise<unknown>;
        w = typeof prop === 'string' && OPERATIONS.has(prop) ? timed(prop, fn) : fn.bind(target);
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
