import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent, type Agent } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners/local-process';
import { createWandbTestServer, waitFor } from '@launch/testkit';
import { afterEach, expect, it } from 'vitest';
import { createWandbEnqueueClient } from './enqueue.js';
import { createWandbQueueSource } from './source.js';

/**
 * The burst from issue 7: 20 ordinary local-process jobs whose runSpec carries W&B's placeholder uri (the most
 * ordinary runSpec W&B's clients send), enqueued at once on a W&B queue, with `max_jobs: -1` and the default
 * `max_schedulers: 1`. W&B's agent runs them in one go; ours once left 7 of every 8 claimed and un-acked.
 */
const ENTITY = 'tester';
const QUEUE = 'burst';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('runs a 20-job burst in one go: every item popped once, acked and finished, without waiting for another poll', async () => {
  const server = await createWandbTestServer({ queues: [{ entity: ENTITY, name: QUEUE }] });
  cleanups.push(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'wandb-burst-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const enqueuer = createWandbEnqueueClient({ entity: ENTITY, apiKey: server.apiKey, baseUrl: server.url, env: {} });
  cleanups.push(() => enqueuer.close());
  for (let i = 0; i < 20; i++) {
    await enqueuer.enqueue({
      queue: QUEUE,
      spec: { uri: 'placeholder-uri-scheduler', resource: 'local-process', project: 'burst', overrides: { entry_point: ['sh', '-c', `exit 0 # job ${i}`] } },
    });
  }
  // A poll interval far longer than the test: an item that needed a second poll would never run in time.
  const source = createWandbQueueSource({ entity: ENTITY, apiKey: server.apiKey, baseUrl: server.url, pollIntervalMs: 600_000, env: {} });
  const runner = createLocalProcessRunner({ logDir: join(dir, 'logs') });
  const agent: Agent = createAgent({
    source,
    queues: [QUEUE],
    runners: [runner],
    entity: ENTITY,
    maxJobs: -1,
    apiKey: server.apiKey,
    baseUrl: server.url,
    env: { PATH: process.env.PATH },
    monitorIntervalMs: 100,
  });
  cleanups.push(async () => {
    await agent.stop('test over');
    await runner.close?.();
    await source.close?.();
  });
  const finished = new Set<string>();
  agent.on('item:finished', (e) => finished.add(e.item.id));
  const failed: string[] = [];
  agent.on('item:failed', (e) => failed.push(`${e.item.id}: ${e.message}`));
  await agent.start();
  await waitFor(() => finished.size + failed.length === 20, { what: '20 finished jobs', timeoutMs: 45_000 });
  expect(failed).toEqual([]);
  const items = server.itemsOf(ENTITY, QUEUE);
  expect(items).toHaveLength(20);
  for (const item of items) {
    expect(item.pops, item.id).toBe(1);
    expect(item.state, item.id).toBe('CLAIMED');
  }
  // One pop per item plus the empty pops of the rounds that found the queue drained (at most one round of 8, and
  // 1), and one when the last job ended. Jobs ending while slots are free do not pop again before the poll
  // interval (CI once counted 30 when each ending job woke the loop for a pop).
  const pops = server.countRequests('popFromRunQueue');
  expect(pops).toBeGreaterThanOrEqual(20);
  expect(pops).toBeLessThanOrEqual(27);
  expect(server.countRequests('ackRunQueueItem')).toBe(20);
});
