import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseForId, createNamer, layout, parseItemName, randomId } from './layout.js';
import { createEmbeddedQueue } from './queue.js';
import { tempStateDir, waitFor } from './test-helpers.js';
import type { EmbeddedQueue, EmbeddedQueueOptions } from './types.js';

const cleanups: (() => Promise<void>)[] = [];
const queues: EmbeddedQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function open(
  options: Partial<EmbeddedQueueOptions> = {},
): Promise<{ dir: string; queue: EmbeddedQueue; again(o?: Partial<EmbeddedQueueOptions>): EmbeddedQueue }> {
  const { dir, cleanup } = await tempStateDir();
  cleanups.push(cleanup);
  const make = (o: Partial<EmbeddedQueueOptions> = {}) => {
    const q = createEmbeddedQueue({ stateDir: dir, fsync: false, ...o });
    queues.push(q);
    return q;
  };
  return { dir, queue: make(options), again: make };
}

/** Enqueues `n` items and runs each to its end (finished), in enqueue order; returns their ids. */
async function finishItems(queue: EmbeddedQueue, name: string, n: number): Promise<string[]> {
  const { id: agent } = await queue.register({ queues: [name], hostname: 'h', version: 't', config: {} });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await queue.enqueue({ queue: name, spec: { i } })).id);
  for (let i = 0; i < n; i++) {
    const item = (await queue.pop(name, agent))!;
    await queue.ack(item, `run-${i}`);
    await queue.finish(item, { state: 'finished', exitCode: 0, runId: `run-${i}` });
  }
  return ids;
}

/** Makes every finished record of `queue` look as if it ended `ageMs` ago (its file's mtime). */
async function ageDone(dir: string, queue: string, ageMs: number): Promise<void> {
  const done = layout(dir).done(queue);
  const t = (Date.now() - ageMs) / 1000;
  for (const file of await readdir(done)) await utimes(join(done, file), t, t);
}

describe('embedded queue: lookup by id', () => {
  it('derives the file name from an id it made, and from no other id', () => {
    const namer = createNamer(() => 1_733_100_000_123);
    const a = namer('high');
    const b = namer('low');
    expect(a.id).toMatch(/^[0-9a-z]{22}$/);
    expect(baseForId(a.id)).toBe(a.base);
    expect(baseForId(b.id)).toBe(b.base);
    expect(parseItemName(`${a.base}.json`)).toMatchObject({ id: a.id, priority: 'high' });
    expect(a.base.startsWith('1-01733100000123-000000-')).toBe(true);
    expect(b.base.startsWith('3-01733100000123-000001-')).toBe(true);
    for (const other of [randomId(12), 'x'.repeat(22), `${a.id.slice(0, 13)}9${a.id.slice(14)}`, '', 'ZZ']) expect(baseForId(other), other).toBeUndefined();
  });

  it('finds an item in each state by its id, and one written under an older naming by listing', async () => {
    const { dir, queue } = await open();
    const { id: agent } = await queue.register({ queues: ['q'], hostname: 'h', version: 't', config: {} });
    const queued = await queue.enqueue({ queue: 'q', spec: { n: 1 } });
    expect(await queue.get(queued.id)).toMatchObject({ id: queued.id, state: 'queued', spec: { n: 1 } });
    const item = (await queue.pop('q', agent))!;
    await queue.ack(item, 'run-1');
    // Another instance (as `launch-agent status` would be) sees the claim through the file system.
    const reader = createEmbeddedQueue({ stateDir: dir, fsync: false });
    queues.push(reader);
    expect(await reader.get(item.id)).toMatchObject({ state: 'acked', runId: 'run-1', claimedBy: agent });
    await queue.finish(item, { state: 'finished', exitCode: 0, runId: 'run-1' });
    expect(await reader.get(item.id)).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(await reader.get('0000000000000000000000')).toBeUndefined();
    expect(await reader.get('')).toBeUndefined();

    // An item file named the way earlier versions named them (a 12-character random id).
    const legacyId = randomId(12);
    const record = {
      v: 1,
      id: legacyId,
      queue: 'q',
      priority: 'medium',
      state: 'finished',
      enqueuedAt: new Date().toISOString(),
      spec: { old: true },
      warnings: [],
      attempts: 1,
    };
    await writeFile(join(layout(dir).done('q'), `2-01700000000000-000000-${legacyId}.json`), JSON.stringify(record));
    expect(await reader.get(legacyId)).toMatchObject({ id: legacyId, state: 'finished', spec: { old: true } });
  });
});

describe('embedded queue: retention of finished items', () => {
  it('keeps the newest maxItems finished items per queue, by enqueue order', async () => {
    const { dir, queue, again } = await open({ retainDone: false });
    const ids = await finishItems(queue, 'q', 30);
    const other = await finishItems(queue, 'other', 3);
    await ageDone(dir, 'q', 5 * 60_000);
    await ageDone(dir, 'other', 5 * 60_000);
    const pruner = again({ retainDone: { maxItems: 10 } });
    expect(await pruner.prune()).toBe(20);
    const left = await pruner.list({ queue: 'q' });
    expect(left.map((r) => r.id)).toEqual(ids.slice(20));
    expect(await pruner.get(ids[0]!)).toBeUndefined();
    expect(await pruner.get(ids[29]!)).toMatchObject({ state: 'finished' });
    expect((await pruner.list({ queue: 'other' })).map((r) => r.id)).toEqual(other);
    expect(await pruner.counts({ queue: 'q' })).toEqual({ queued: 0, claimed: 0, done: 10 });
    // Nothing more to do: a second prune removes nothing.
    expect(await pruner.prune()).toBe(0);
  });

  it('never removes a record that ended within the last minute, whatever the policy', async () => {
    const { queue, again } = await open({ retainDone: false });
    await finishItems(queue, 'q', 5);
    const pruner = again({ retainDone: { maxItems: 1, maxAgeMs: 1 } });
    expect(await pruner.prune()).toBe(0);
    expect((await pruner.list({ queue: 'q' })).length).toBe(5);
  });

  it('removes records that ended more than maxAgeMs ago, not those enqueued long ago that ended recently', async () => {
    let clock = Date.now() - 10 * 24 * 3600_000;
    const { dir, queue, again } = await open({ retainDone: false, now: () => clock });
    const [oldEnded] = await finishItems(queue, 'q', 1);
    await ageDone(dir, 'q', 8 * 24 * 3600_000);
    // Enqueued ten days ago (by the name's clock), ended two minutes ago.
    const [longRun] = await finishItems(queue, 'q', 1);
    const path = join(layout(dir).done('q'), `${baseForId(longRun!)!}.json`);
    const t = (Date.now() - 2 * 60_000) / 1000;
    await utimes(path, t, t);
    clock = Date.now();
    const [recent] = await finishItems(queue, 'q', 1);
    await utimes(join(layout(dir).done('q'), `${baseForId(recent!)!}.json`), t, t);
    const pruner = again(); // the defaults: 10,000 items, 7 days
    expect(await pruner.prune()).toBe(1);
    expect(await pruner.get(oldEnded!)).toBeUndefined();
    expect(await pruner.get(longRun!)).toMatchObject({ state: 'finished' });
    expect(await pruner.get(recent!)).toMatchObject({ state: 'finished' });
  });

  it('prunes in the background once an item ends, without being asked', async () => {
    const { dir, queue, again } = await open({ retainDone: false });
    await finishItems(queue, 'q', 12);
    await ageDone(dir, 'q', 5 * 60_000);
    const agentQueue = again({ retainDone: { maxItems: 5 } });
    const [fresh] = await finishItems(agentQueue, 'q', 1);
    await waitFor(async () => (await agentQueue.counts({ queue: 'q' })).done === 5, 'the background prune');
    expect(await agentQueue.get(fresh!)).toMatchObject({ state: 'finished' });
  });

  it('refuses a bad retainDone, naming the field', async () => {
    const { dir } = await tempStateDir().then((t) => (cleanups.push(t.cleanup), t));
    expect(() => createEmbeddedQueue({ stateDir: dir, retainDone: { maxItems: 0 } })).toThrow(/retainDone\.maxItems/);
    expect(() => createEmbeddedQueue({ stateDir: dir, retainDone: { maxAgeMs: 1.5 } })).toThrow(/retainDone\.maxAgeMs/);
    expect(() => createEmbeddedQueue({ stateDir: dir, retainDone: { maxItem: 5 } as never })).toThrow(/maxItem/);
  });
});
