import type { Priority, QueueItem, QueueSource } from '@launch/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** What a {@link describeQueueSource} factory returns: a fresh source with an empty queue. */
export interface QueueSourceFixture {
  source: QueueSource;
  /** The queue the suite uses; it must exist and be empty. Default `conformance`. */
  queue?: string;
  /** Puts a spec on the queue the way a user would (CLI, API). */
  enqueue(queue: string, spec: Record<string, unknown>, priority?: Priority): Promise<void>;
  /** Whether the source pops by priority (W&B's server does; a simple test double may not). Default true. */
  ordersByPriority?: boolean;
  cleanup(): Promise<void>;
}

/** Polls `check` until it holds or the deadline passes. */
async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The contract every `QueueSource` must keep, as a vitest suite. Run it with a factory that
 * returns a fresh source and empty queue for each test:
 *
 * ```ts
 * describeQueueSource('embedded', async () => { … return { source, enqueue, cleanup }; });
 * ```
 */
export function describeQueueSource(name: string, factory: () => Promise<QueueSourceFixture>): void {
  describe(`QueueSource conformance: ${name}`, () => {
    let fx: QueueSourceFixture;
    let queue: string;
    let agentId: string;

    beforeEach(async () => {
      fx = await factory();
      queue = fx.queue ?? 'conformance';
      const registration = await fx.source.register({
        queues: [queue],
        hostname: 'conformance-host',
        version: 'conformance@0.0.0',
        config: {},
      });
      agentId = registration.id;
    });

    afterEach(async () => {
      await fx.source.close?.();
      await fx.cleanup();
    });

    const popOrFail = async (): Promise<QueueItem> => {
      const item = await fx.source.pop(queue, agentId);
      if (!item) throw new Error('expected an item, the queue was empty');
      return item;
    };

    it('declares its version, name and capabilities', () => {
      expect(fx.source.specificationVersion).toBe('v1');
      expect(fx.source.name).toMatch(/\S/);
      expect(typeof fx.source.capabilities.notify).toBe('boolean');
      expect(fx.source.capabilities.pollIntervalMs).toBeGreaterThan(0);
      if (fx.source.capabilities.notify) expect(typeof fx.source.subscribe).toBe('function');
    });

    it('registers an agent with an id and a name', async () => {
      const again = await fx.source.register({ queues: [queue], hostname: 'h', version: 'v', config: {} });
      expect(again.id).toMatch(/\S/);
      expect(again.name).toMatch(/\S/);
      expect(again.id).not.toBe(agentId);
    });

    it('pops null from an empty queue', async () => {
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('runs an item through register → pop → ack → finish, and never hands it out again', async () => {
      await fx.enqueue(queue, { job: 'team/project/job:latest', overrides: { args: ['--n', '1'] } });
      const item = await popOrFail();
      expect(item.id).toMatch(/\S/);
      expect(item.queue).toBe(queue);
      expect(item.spec).toMatchObject({ job: 'team/project/job:latest', overrides: { args: ['--n', '1'] } });
      await fx.source.ack(item, 'run-conformance-1');
      await fx.source.finish(item, { state: 'finished', exitCode: 0, runId: 'run-conformance-1' });
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('does not pop an item twice', async () => {
      await fx.enqueue(queue, { name: 'only' });
      const first = await popOrFail();
      expect(await fx.source.pop(queue, agentId)).toBeNull();
      const other = await fx.source.register({ queues: [queue], hostname: 'h2', version: 'v', config: {} });
      expect(await fx.source.pop(queue, other.id)).toBeNull();
      await fx.source.ack(first, 'run-once');
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('pops in priority order, first in first out within a priority', async (ctx) => {
      if (fx.ordersByPriority === false) ctx.skip();
      await fx.enqueue(queue, { name: 'low-1' }, 'low');
      await fx.enqueue(queue, { name: 'high-1' }, 'high');
      await fx.enqueue(queue, { name: 'medium-1' }, 'medium');
      await fx.enqueue(queue, { name: 'high-2' }, 'high');
      await fx.enqueue(queue, { name: 'critical-1' }, 'critical');
      await fx.enqueue(queue, { name: 'medium-2' }, 'medium');
      const order: unknown[] = [];
      for (let i = 0; i < 6; i++) order.push(((await popOrFail()).spec as { name: string }).name);
      expect(order).toEqual(['critical-1', 'high-1', 'high-2', 'medium-1', 'medium-2', 'low-1']);
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('pops items of one priority in the order they were enqueued', async () => {
      const names = Array.from({ length: 12 }, (_, i) => `fifo-${i}`);
      for (const n of names) await fx.enqueue(queue, { name: n });
      const got: string[] = [];
      for (let i = 0; i < names.length; i++) got.push(((await popOrFail()).spec as { name: string }).name);
      expect(got).toEqual(names);
    });

    it('accepts warnings and failures without throwing', async () => {
      await fx.enqueue(queue, { name: 'warned' });
      const item = await popOrFail();
      await fx.source.ack(item, 'run-warned');
      await expect(fx.source.warn(item, { stage: 'Kubernetes', message: 'pod pending: Unschedulable' })).resolves.toBeUndefined();
      await expect(fx.source.fail(item, { stage: 'run', message: 'exited with code 3', files: ['error.log'] })).resolves.toBeUndefined();
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('fails an item that was claimed but never acknowledged', async () => {
      await fx.enqueue(queue, { name: 'bad' });
      const item = await popOrFail();
      await expect(fx.source.fail(item, { stage: 'agent', message: 'invalid spec' })).resolves.toBeUndefined();
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('requeues a spec on the same queue as a new item that pops again', async () => {
      const spec = { name: 'preempted', run_id: 'r1', _resume_count: 1 };
      await fx.enqueue(queue, { name: 'preempted', run_id: 'r1' });
      const item = await popOrFail();
      await fx.source.ack(item, 'r1');
      const newId = await fx.source.requeue(item, spec);
      expect(typeof newId).toBe('string');
      expect(newId).not.toBe(item.id);
      await fx.source.finish(item, { state: 'preempted', exitCode: null, runId: 'r1' });
      const again = await popOrFail();
      expect(again.id).toBe(newId);
      expect(again.queue).toBe(queue);
      expect(again.spec).toMatchObject(spec);
      expect(await fx.source.pop(queue, agentId)).toBeNull();
    });

    it('hands a released item out again', async (ctx) => {
      if (!fx.source.release) ctx.skip();
      await fx.enqueue(queue, { name: 'released' });
      const item = await popOrFail();
      await fx.source.release!(item);
      const again = await popOrFail();
      expect(again.id).toBe(item.id);
      expect(again.spec).toMatchObject({ name: 'released' });
    });

    it('reports agent status, heartbeats, and answers stop queries', async () => {
      await fx.source.updateAgentStatus(agentId, 'POLLING');
      await fx.source.updateAgentStatus(agentId, 'RUNNING');
      if (fx.source.shouldStop) expect(await fx.source.shouldStop(agentId)).toBe(false);
      await fx.enqueue(queue, { name: 'beating' });
      const item = await popOrFail();
      await fx.source.ack(item, 'run-beat');
      await fx.source.heartbeat?.(agentId, [item]);
      expect(await fx.source.isRunStopped({ runId: 'run-beat', itemId: item.id, queue, entity: null, project: null })).toBe(false);
      await fx.source.finish(item, { state: 'finished', exitCode: 0, runId: 'run-beat' });
    });

    it('wakes subscribers when an item is enqueued (notify capability)', async (ctx) => {
      if (!fx.source.capabilities.notify || !fx.source.subscribe) ctx.skip();
      let woken = 0;
      const unsubscribe = fx.source.subscribe!(() => {
        woken++;
      });
      try {
        // Let any wake-up caused by setting up the subscription pass first.
        const before = woken;
        await fx.enqueue(queue, { name: 'wake' });
        await eventually(() => woken > before, 'the subscriber to be called after an enqueue');
        expect(await popOrFail()).toBeTruthy();
      } finally {
        unsubscribe();
      }
    });
  });
}
