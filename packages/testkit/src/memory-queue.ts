import type { AgentInfo, AgentStatus, FailureReport, FinishReport, Priority, QueueItem, QueueSource, RunRef, WarningReport } from '@launch/core';
import { PRIORITY_VALUE } from '@launch/core';

/** One recorded call on the memory queue, in order. */
export type MemoryQueueCall =
  | { op: 'register'; agent: AgentInfo }
  | { op: 'pop'; queue: string; itemId?: string }
  | { op: 'ack'; itemId: string; runId: string }
  | { op: 'fail'; itemId: string; failure: FailureReport }
  | { op: 'warn'; itemId: string; warning: WarningReport }
  | { op: 'finish'; itemId: string; result: FinishReport }
  | { op: 'requeue'; itemId: string; newItemId: string; spec: Record<string, unknown> }
  | { op: 'release'; itemId: string }
  | { op: 'status'; status: AgentStatus };

/**
 * An in-memory QueueSource that records every call, for agent tests that assert the order of
 * reports (ack before run, status transitions). It notifies on enqueue like the embedded queue.
 */
export interface MemoryQueue extends QueueSource {
  readonly calls: MemoryQueueCall[];
  enqueue(queue: string, spec: unknown, priority?: Priority): string;
  /** Marks runs whose `runId` or item id is listed as stopped by the user. */
  readonly stopRequests: Set<string>;
  /** Makes `shouldStop` answer true. */
  stopAgent(): void;
  /** Items still queued, per queue. */
  pending(queue?: string): number;
}

export function createMemoryQueue(options: { pollIntervalMs?: number; notify?: boolean } = {}): MemoryQueue {
  const queues = new Map<string, { id: string; spec: unknown; priority: Priority; seq: number }[]>();
  const calls: MemoryQueueCall[] = [];
  const listeners = new Set<() => void>();
  const stopRequests = new Set<string>();
  let stopAgent = false;
  let seq = 0;
  const push = (queue: string, spec: unknown, priority: Priority = 'medium') => {
    const id = `item-${++seq}`;
    const list = queues.get(queue) ?? [];
    list.push({ id, spec, priority, seq });
    list.sort((a, b) => PRIORITY_VALUE[a.priority] - PRIORITY_VALUE[b.priority] || a.seq - b.seq);
    queues.set(queue, list);
    for (const l of listeners) l();
    return id;
  };
  return {
    specificationVersion: 'v1',
    name: 'memory',
    capabilities: { notify: options.notify ?? true, pollIntervalMs: options.pollIntervalMs ?? 60_000 },
    calls,
    stopRequests,
    stopAgent: () => {
      stopAgent = true;
    },
    pending: (queue) => (queue ? (queues.get(queue)?.length ?? 0) : [...queues.values()].reduce((n, l) => n + l.length, 0)),
    enqueue: push,
    async register(agent) {
      calls.push({ op: 'register', agent });
      return { id: 'agent-1', name: 'memory-agent' };
    },
    async pop(queue) {
      const next = queues.get(queue)?.shift();
      calls.push({ op: 'pop', queue, itemId: next?.id });
      return next ? ({ id: next.id, queue, spec: next.spec, priority: next.priority } satisfies QueueItem) : null;
    },
    async ack(item, runId) {
      calls.push({ op: 'ack', itemId: item.id, runId });
    },
    async fail(item, failure) {
      calls.push({ op: 'fail', itemId: item.id, failure });
    },
    async warn(item, warning) {
      calls.push({ op: 'warn', itemId: item.id, warning });
    },
    async finish(item, result) {
      calls.push({ op: 'finish', itemId: item.id, result });
    },
    async requeue(item, spec) {
      const newItemId = push(item.queue, spec);
      calls.push({ op: 'requeue', itemId: item.id, newItemId, spec });
      return newItemId;
    },
    async release(item) {
      calls.push({ op: 'release', itemId: item.id });
      const list = queues.get(item.queue) ?? [];
      list.unshift({ id: item.id, spec: item.spec, priority: item.priority ?? 'medium', seq: 0 });
      queues.set(item.queue, list);
    },
    async updateAgentStatus(_agentId, status) {
      calls.push({ op: 'status', status });
    },
    async shouldStop() {
      return stopAgent;
    },
    async isRunStopped(run: RunRef) {
      return stopRequests.has(run.runId) || stopRequests.has(run.itemId);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
