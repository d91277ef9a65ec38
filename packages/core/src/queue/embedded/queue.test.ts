import { readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LaunchError } from '../../errors.js';
import { defaultStateDir } from './layout.js';
import { createEmbeddedQueue } from './queue.js';
import { tempStateDir } from './test-helpers.js';
import type { EmbeddedQueue, EmbeddedQueueOptions } from './types.js';

const agentInfo = (queues: string[]) => ({ queues, hostname: 'test-host', version: 'test', config: {} });

describe('embedded queue', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const opened: EmbeddedQueue[] = [];
  const open = (extra: Partial<EmbeddedQueueOptions> = {}) => {
    const q = createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000, ...extra });
    opened.push(q);
    return q;
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await tempStateDir());
  });
  afterEach(async () => {
    for (const q of opened.splice(0)) await q.close?.();
    await cleanup();
  });

  describe('ordering and durability', () => {
    it('keeps items, their order and their records across a new instance on the same directory', async () => {
      const a = open();
      await a.enqueue({ queue: 'q', spec: { n: 'low' }, priority: 'low' });
      await a.enqueue({ queue: 'q', spec: { n: 'm1' } });
      await a.enqueue({ queue: 'q', spec: { n: 'crit' }, priority: 'critical' });
      await a.enqueue({ queue: 'q', spec: { n: 'm2' } });
      await a.enqueue({ queue: 'other', spec: { n: 'elsewhere' } });
      await a.close?.();

      const b = open();
      const { id: agent } = await b.register(agentInfo(['q']));
      const names: unknown[] = [];
      for (let i = 0; i < 4; i++) {
        const item = await b.pop('q', agent);
        names.push((item?.spec as { n: string }).n);
        await b.ack(item!, `run-${i}`);
        await b.finish(item!, { state: 'finished', exitCode: 0, runId: `run-${i}` });
      }
      expect(names).toEqual(['crit', 'm1', 'm2', 'low']);
      expect(await b.pop('q', agent)).toBeNull();

      const c = open();
      const done = await c.list({ queue: 'q' });
      expect(done.map((r) => (r.spec as { n: string }).n)).toEqual(['low', 'm1', 'crit', 'm2']); // enqueue order
      expect(done.every((r) => r.state === 'finished' && r.exitCode === 0 && r.runState === 'finished')).toBe(true);
      expect((await c.list({ state: 'queued' })).map((r) => r.queue)).toEqual(['other']);
      expect(await c.counts()).toEqual({ queued: 1, claimed: 0, done: 4 });
      expect(await c.counts({ queue: 'q' })).toEqual({ queued: 0, claimed: 0, done: 4 });
    });

    it('keeps FIFO order among many items enqueued in the same millisecond', async () => {
      const q = open({ now: () => 1_700_000_000_000 });
      for (let i = 0; i < 50; i++) await q.enqueue({ queue: 'q', spec: i });
      const { id } = await q.register(agentInfo(['q']));
      const got: unknown[] = [];
      for (let i = 0; i < 50; i++) got.push((await q.pop('q', id))?.spec);
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });

    it('stores any JSON spec as given and refuses what JSON cannot hold', async () => {
      const q = open({ maxItemBytes: 10_000 });
      const { id } = await q.register(agentInfo(['q']));
      for (const spec of [null, 'a string', 42, [1, { a: 2 }], { deep: { x: [true] } }]) {
        await q.enqueue({ queue: 'q', spec });
        expect((await q.pop('q', id))?.spec).toEqual(spec);
      }
      await expect(q.enqueue({ queue: 'q', spec: undefined })).rejects.toMatchObject({ code: 'queue.invalid_spec' });
      await expect(q.enqueue({ queue: 'q', spec: { n: 1n } })).rejects.toMatchObject({ code: 'queue.invalid_spec' });
      await expect(q.enqueue({ queue: 'q', spec: 'x'.repeat(20_000) })).rejects.toMatchObject({ code: 'queue.item_too_large' });
      await expect(q.enqueue({ queue: '..', spec: {} })).rejects.toMatchObject({ code: 'queue.invalid_name' });
      await expect(q.enqueue({ queue: 'q', spec: {}, priority: 'urgent' as never })).rejects.toMatchObject({
        code: 'queue.invalid_priority',
      });
    });

    it('accepts queue names with spaces and slashes without escaping the state directory', async () => {
      const q = open();
      await q.enqueue({ queue: 'team/gpu queue', spec: { ok: true } });
      expect(await readdir(join(dir, 'queues'))).toEqual(['team%2Fgpu%20queue']);
      const { id } = await q.register(agentInfo(['team/gpu queue']));
      expect((await q.pop('team/gpu queue', id))?.queue).toBe('team/gpu queue');
    });

    it('rejects bad options naming the field', () => {
      expect(() => createEmbeddedQueue({ stateDir: dir, leaseMs: -5 })).toThrow(/leaseMs/);
      expect(() => createEmbeddedQueue({ stateDir: '' })).toThrow(/stateDir/);
    });
  });

  describe('records for status queries', () => {
    it('shows claim, ack, warnings, failure, finish and requeue on the item record', async () => {
      const q = open({ now: () => Date.parse('2030-01-01T00:00:00Z'), leaseMs: 30_000, hostname: 'box' });
      const { id: agent } = await q.register(agentInfo(['q']));
      const queued = await q.enqueue({ queue: 'q', spec: { n: 1 }, priority: 'high' });
      expect(queued).toMatchObject({ state: 'queued', priority: 'high', attempts: 0, warnings: [], enqueuedAt: '2030-01-01T00:00:00.000Z' });

      const item = (await q.pop('q', agent))!;
      expect(await q.get(item.id)).toMatchObject({
        state: 'claimed',
        claimedBy: agent,
        claimedPid: process.pid,
        claimedHost: 'box',
        leaseUntil: '2030-01-01T00:00:30.000Z',
        attempts: 1,
      });
      await q.ack(item, 'run-abc');
      await q.warn(item, { stage: 'Kubernetes', message: 'pod pending' });
      expect(await q.get(item.id)).toMatchObject({ state: 'acked', runId: 'run-abc', warnings: [{ stage: 'Kubernetes', message: 'pod pending' }] });
      expect((await q.list({ state: 'acked' })).map((r) => r.id)).toEqual([item.id]);

      const newId = await q.requeue(item, { n: 1, _resume_count: 1 });
      await q.finish(item, { state: 'preempted', exitCode: null, runId: 'run-abc' });
      expect(await q.get(item.id)).toMatchObject({ state: 'finished', runState: 'preempted', exitCode: null, finishedAt: '2030-01-01T00:00:00.000Z' });
      expect(await q.get(newId)).toMatchObject({ state: 'queued', priority: 'high', requeuedFrom: item.id, spec: { n: 1, _resume_count: 1 } });

      const second = (await q.pop('q', agent))!;
      await q.fail(second, { stage: 'build', message: 'kaniko exited 1', files: ['build.log'] });
      // A finish after a failure keeps the failure and adds the run's end.
      await q.finish(second, { state: 'failed', exitCode: 1, runId: 'run-2' });
      expect(await q.get(second.id)).toMatchObject({
        state: 'failed',
        failure: { stage: 'build', message: 'kaniko exited 1', files: ['build.log'] },
        runState: 'failed',
        exitCode: 1,
      });
      expect((await q.list({ state: 'failed' })).map((r) => r.id)).toEqual([second.id]);
      expect(await q.get('nosuchitem00')).toBeUndefined();
    });

    it('refuses to ack, warn or finish an item it never claimed', async () => {
      const q = open();
      const fake = { id: 'abcdefabcdef', queue: 'q', spec: {} };
      for (const call of [() => q.ack(fake, 'r'), () => q.warn(fake, { stage: 'x', message: 'y' }), () => q.finish(fake, { state: 'finished', runId: 'r' })]) {
        const error = await call().catch((e: unknown) => e);
        expect(LaunchError.isInstance(error) && error.code).toBe('queue.not_claimed');
      }
    });

    it('releases an item back to its place without counting an attempt', async () => {
      const q = open();
      const { id: agent } = await q.register(agentInfo(['q']));
      const first = await q.enqueue({ queue: 'q', spec: 1 });
      await q.enqueue({ queue: 'q', spec: 2 });
      const item = (await q.pop('q', agent))!;
      await q.release(item);
      expect(await q.get(first.id)).toMatchObject({ state: 'queued', attempts: 0 });
      const again = (await q.pop('q', agent))!;
      expect(again.id).toBe(first.id);
      const record = await q.get(first.id);
      expect(record).toMatchObject({ attempts: 1, warnings: [] });
    });
  });

  describe('agents and stop requests', () => {
    it('writes agent status files and answers stop requests for items, runs and agents', async () => {
      const q = open({ hostname: 'box' });
      const { id, name } = await q.register(agentInfo(['q']));
      expect(id).toMatch(/^test-host-[0-9a-z]{8}$/);
      expect(name).toBe(id);
      await q.updateAgentStatus(id, 'RUNNING');
      const [agent] = await q.listAgents();
      expect(agent).toMatchObject({ id, status: 'RUNNING', pid: process.pid, hostname: 'box', queues: ['q'], alive: true });

      expect(await q.shouldStop(id)).toBe(false);
      await q.requestAgentStop(id);
      expect(await q.shouldStop(id)).toBe(true);

      const ref = { itemId: 'item0000aaaa', runId: 'run-1', queue: 'q', entity: null, project: null };
      expect(await q.isRunStopped(ref)).toBe(false);
      await q.requestStop('run-1');
      expect(await q.isRunStopped(ref)).toBe(true);
      expect(await q.isRunStopped({ ...ref, runId: 'run-2' })).toBe(false);
      await q.requestStop('item0000aaaa');
      expect(await q.isRunStopped({ ...ref, runId: 'run-2' })).toBe(true);
      // A hostile id stays inside the state directory.
      await q.requestStop('../../escape');
      expect(await readdir(join(dir, 'stops'))).toContain('..%2F..%2Fescape');
    });
  });

  describe('hostile item files', () => {
    it('fails corrupt, empty, huge and foreign files with a clear message while good items still pop', async () => {
      const q = open({ maxItemBytes: 4096 });
      const good1 = await q.enqueue({ queue: 'q', spec: { n: 'good-1' } });
      const good2 = await q.enqueue({ queue: 'q', spec: { n: 'good-2' }, priority: 'low' });
      const queued = join(dir, 'queues', 'q', 'queued');
      // Names sort before the good items (critical priority), so pop meets every bad one first.
      const bad = {
        '0-00000000000001-000000-badjson00001.json': '{"id": "x", "spec": ',
        '0-00000000000001-000001-emptyfile0001.json': '',
        '0-00000000000001-000002-notobject0001.json': '[1,2,3]',
        '0-00000000000001-000003-nospec0000001.json': '{"id":"x","queue":"q","enqueuedAt":"2020"}',
        '0-00000000000001-000004-wrongtype0001.json': '{"id":"x","queue":"q","enqueuedAt":5,"spec":{}}',
        '0-00000000000001-000005-hugefile00001.json': JSON.stringify({ id: 'x', queue: 'q', enqueuedAt: 'now', spec: 'y'.repeat(10_000) }),
        '0-dropped-by-hand.json': '{"spec": {}}',
      };
      for (const [file, text] of Object.entries(bad)) await writeFile(join(queued, file), text);

      const { id: agent } = await q.register(agentInfo(['q']));
      expect((await q.pop('q', agent))?.id).toBe(good1.id);
      expect((await q.pop('q', agent))?.id).toBe(good2.id);
      expect(await q.pop('q', agent)).toBeNull();

      const failed = await q.list({ state: 'failed' });
      expect(failed).toHaveLength(7);
      const message = (fragment: string) => failed.find((r) => r.failure?.message.includes(fragment))?.failure?.message ?? '';
      expect(message('badjson00001')).toMatch(/is unusable: it is not valid JSON/);
      expect(message('emptyfile0001')).toMatch(/the file is empty: a half-written or truncated file/);
      expect(message('notobject0001')).toMatch(/expected a JSON object, found an array/);
      expect(message('nospec0000001')).toMatch(/it has no "spec" field/);
      expect(message('wrongtype0001')).toMatch(/enqueuedAt/);
      expect(message('hugefile00001')).toMatch(/over the 4096-byte limit/);
      expect(message('0-dropped-by-hand.json')).toMatch(/its name is not an item file name/);
      for (const r of failed) {
        expect(r.failure?.stage).toBe('agent');
        // The raw file is kept for inspection, and the message says where.
        const kept = r.failure!.files![0]!;
        expect(r.failure!.message).toContain(kept);
        await expect(readFile(kept, 'utf8')).resolves.toBeTypeOf('string');
      }
    });
  });

  describe('leases', () => {
    it('takes back a claim only after the lease expired and, for a live process, another lease went by', async () => {
      let t = Date.parse('2030-01-01T00:00:00Z');
      const holder = open({ leaseMs: 10_000, now: () => t, autoRenew: false });
      const other = open({ leaseMs: 10_000, now: () => t });
      const { id } = await holder.enqueue({ queue: 'q', spec: {} });
      const { id: agent } = await holder.register(agentInfo(['q']));
      const item = (await holder.pop('q', agent))!;

      t += 9_000;
      expect(await other.recoverExpired()).toBe(0); // lease still valid
      t += 2_000;
      expect(await other.recoverExpired()).toBe(0); // expired, but our pid is alive
      await holder.heartbeat(agent, [item]); // renewed to t + 10 s
      t += 15_000;
      expect(await other.recoverExpired()).toBe(0); // expired 5 s ago, pid alive: not yet
      t += 6_000;
      expect(await other.recoverExpired()).toBe(1); // expired > one lease ago: the pid may be reused
      expect((await other.get(id))?.state).toBe('queued');

      // The old holder learns that it lost the claim instead of writing over the new one.
      const error = await holder.ack(item, 'run-late').catch((e: unknown) => e);
      expect(LaunchError.isInstance(error) && error.code).toBe('queue.claim_lost');
    });

    it('a heartbeat that lands while the item is being finished is moot, not a lost claim', async () => {
      const q = open({ autoRenew: false });
      const { id: agent } = await q.register(agentInfo(['q']));
      const errors: unknown[] = [];
      // The heartbeat starts a few microtasks after finish(), so it meets every step of finishing once.
      for (let delay = 0; delay < 40; delay++) {
        await q.enqueue({ queue: 'q', spec: { delay } });
        const item = (await q.pop('q', agent))!;
        await q.ack(item, `run-${delay}`);
        const finished = q.finish(item, { state: 'finished', exitCode: 0, runId: `run-${delay}` });
        for (let i = 0; i < delay; i++) await Promise.resolve();
        const beat = q.heartbeat(agent, [item]).catch((e: unknown) => errors.push(e));
        await Promise.all([finished, beat]);
        expect((await q.get(item.id))?.state).toBe('finished');
      }
      expect(errors).toEqual([]);
    });

    it('never requeues an item whose end was recorded, even if the move to done/ did not happen', async () => {
      let t = Date.parse('2030-01-01T00:00:00Z');
      const q = open({ leaseMs: 1000, now: () => t });
      const { id } = await q.enqueue({ queue: 'q', spec: {} });
      const { id: agent } = await q.register(agentInfo(['q']));
      await q.pop('q', agent);
      // Simulate a crash between writing the end state and the rename: edit the claimed file by hand.
      const claimedDir = join(dir, 'queues', 'q', 'claimed');
      const [file] = await readdir(claimedDir);
      const record = JSON.parse(await readFile(join(claimedDir, file!), 'utf8')) as Record<string, unknown>;
      await writeFile(join(claimedDir, file!), JSON.stringify({ ...record, state: 'finished', claimedPid: 999_999_999 }));

      const fresh = open({ leaseMs: 1000, now: () => t });
      t += 5000;
      expect(await fresh.recoverExpired()).toBe(0);
      expect(await readdir(claimedDir)).toEqual([]);
      expect((await fresh.get(id))?.state).toBe('finished');
      const { id: other } = await fresh.register(agentInfo(['q']));
      expect(await fresh.pop('q', other)).toBeNull();
    });

    it('leaves a claim whose record is still being written alone, whatever the clock says', async () => {
      let t = Date.now();
      const q = open({ leaseMs: 1000, now: () => t });
      const { id } = await q.enqueue({ queue: 'q', spec: {} });
      // The rename is done, the claim record not yet written: the file still holds its queued record.
      const base = (await readdir(join(dir, 'queues', 'q', 'queued')))[0]!.replace(/\.json$/, '');
      await q.register(agentInfo(['q']));
      const { rename } = await import('node:fs/promises');
      await rename(join(dir, 'queues', 'q', 'queued', `${base}.json`), join(dir, 'queues', 'q', 'claimed', `${base}.tokentoken01.json`));
      t += 3_600_000;
      expect(await q.recoverExpired()).toBe(0); // the rename is seconds old in wall time
      expect((await q.get(id))?.state).toBe('claimed');
    });

    it('renews the leases of held items by itself while the process lives', async () => {
      const q = open({ leaseMs: 60 });
      const { id: agent } = await q.register(agentInfo(['q']));
      const { id } = await q.enqueue({ queue: 'q', spec: {} });
      await q.pop('q', agent);
      const first = Date.parse((await q.get(id))!.leaseUntil!);
      const { waitFor } = await import('./test-helpers.js');
      const other = open({ leaseMs: 60 });
      await waitFor(async () => Date.parse((await other.get(id))?.leaseUntil ?? '0') > first + 120, 'the lease to be renewed');
    });
  });

  it('removes temp files abandoned by crashed writers, and only old ones', async () => {
    const q = open();
    await q.enqueue({ queue: 'q', spec: {} });
    const tmp = join(dir, 'tmp');
    await writeFile(join(tmp, 'old.tmp'), '{"half":');
    await writeFile(join(tmp, 'fresh.tmp'), '{"being written');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(tmp, 'old.tmp'), hourAgo, hourAgo);
    await q.recoverExpired();
    expect(await readdir(tmp)).toEqual(['fresh.tmp']);
  });

  it('defaults the state directory to LAUNCH_STATE_DIR, then XDG_DATA_HOME, then ~/.local/share', () => {
    expect(defaultStateDir({ LAUNCH_STATE_DIR: '/s', XDG_DATA_HOME: '/x' }, '/home/u')).toBe('/s');
    expect(defaultStateDir({ XDG_DATA_HOME: '/x' }, '/home/u')).toBe('/x/launch');
    expect(defaultStateDir({}, '/home/u')).toBe('/home/u/.local/share/launch');
  });
});
