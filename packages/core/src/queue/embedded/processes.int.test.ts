import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { pidAlive } from './files.js';
import { createEmbeddedQueue } from './queue.js';
import { tempStateDir, waitFor } from './test-helpers.js';

const workerPath = fileURLToPath(new URL('./__fixtures__/worker.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../../', import.meta.url));

/** A worker process with its stdout parsed into JSON messages. */
interface Worker {
  child: ChildProcess;
  messages: Record<string, unknown>[];
  next<T extends Record<string, unknown>>(key: string, timeoutMs?: number): Promise<T>;
  stderr(): string;
}

const started: ChildProcess[] = [];

function startWorker(...args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', workerPath, ...args], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  started.push(child);
  const messages: Record<string, unknown>[] = [];
  let buffer = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim()) messages.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  return {
    child,
    messages,
    stderr: () => err,
    next: <T extends Record<string, unknown>>(key: string, timeoutMs = 30_000) =>
      waitFor(
        () => {
          if (child.exitCode !== null && child.exitCode !== 0) throw new Error(`worker exited ${child.exitCode}: ${err}`);
          return messages.find((m) => key in m) as T | undefined;
        },
        `the worker to report "${key}" (stderr: ${err})`,
        timeoutMs,
      ),
  };
}

afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('embedded queue across processes', () => {
  it('hands each of 500 items to exactly one of two racing processes', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const queue = createEmbeddedQueue({ stateDir: dir, fsync: false });
      const enqueued = new Set<string>();
      for (let i = 0; i < 500; i++) enqueued.add((await queue.enqueue({ queue: 'race', spec: { i } })).id);
      const a = startWorker('pop-all', dir, 'race');
      const b = startWorker('pop-all', dir, 'race');
      await Promise.all([a.next('ready'), b.next('ready')]);
      a.child.stdin!.write('go\n');
      b.child.stdin!.write('go\n');
      const [ra, rb] = await Promise.all([a.next<{ ids: string[] }>('ids', 60_000), b.next<{ ids: string[] }>('ids', 60_000)]);
      const all = [...ra.ids, ...rb.ids];
      expect(all).toHaveLength(500);
      expect(new Set(all)).toEqual(enqueued);
      // Both really competed (otherwise the test proves nothing about the race).
      expect(ra.ids.length).toBeGreaterThan(0);
      expect(rb.ids.length).toBeGreaterThan(0);
      const finished = await queue.list({ queue: 'race', state: 'finished' });
      expect(finished).toHaveLength(500);
      expect(finished.every((r) => r.attempts === 1)).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it('returns the acked item of an agent killed with SIGKILL to the queue, and counts the attempt', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      let offset = 0;
      const queue = createEmbeddedQueue({ stateDir: dir, leaseMs: 1000, now: () => Date.now() + offset });
      const { id } = await queue.enqueue({ queue: 'q', spec: { name: 'victim' } });
      const w = startWorker('claim', dir, 'q', '1000');
      const { claimed, pid } = await w.next<{ claimed: string; pid: number }>('claimed');
      expect(claimed).toBe(id);
      expect((await queue.get(id))?.state).toBe('acked');

      // Alive: an expired lease alone does not take the item back.
      offset = 1500;
      expect(await queue.recoverExpired()).toBe(0);

      w.child.kill('SIGKILL');
      await once(w.child, 'exit');
      await waitFor(() => !pidAlive(pid), 'the killed worker to disappear');
      expect(await queue.recoverExpired()).toBe(1);
      expect((await queue.get(id))?.state).toBe('queued');

      const { id: agentId } = await queue.register({ queues: ['q'], hostname: 'h', version: 'v', config: {} });
      const again = await queue.pop('q', agentId);
      expect(again?.id).toBe(id);
      const record = await queue.get(id);
      expect(record?.attempts).toBe(2);
      expect(record?.warnings.at(-1)?.message).toMatch(new RegExp(`attempt 1 was lost: agent .* \\(pid ${pid} .*\\) died while running it as run run-${id}`));
      await queue.close();
    } finally {
      await cleanup();
    }
  });

  it('lets a restarted agent finish an item whose claimant died, before the lease expires, and never re-runs it', async () => {
    // An agent restarted after kill -9 adopts a remote run (a Kubernetes Job) and reports its end
    // while the dead agent's lease still stands: the report must land, and the item must stay done.
    const { dir, cleanup } = await tempStateDir();
    try {
      let offset = 0;
      const queue = createEmbeddedQueue({ stateDir: dir, leaseMs: 60_000, now: () => Date.now() + offset });
      const { id } = await queue.enqueue({ queue: 'q', spec: { name: 'adopted' } });
      const w = startWorker('claim', dir, 'q', '60000');
      const { pid } = await w.next<{ claimed: string; pid: number }>('claimed');
      const item = { id, queue: 'q', spec: { name: 'adopted' } };

      // While the claimant lives, nobody else may report on its item.
      await expect(queue.finish(item, { state: 'finished', exitCode: 0, runId: `run-${id}` })).rejects.toThrow(/claim|held|not/i);

      w.child.kill('SIGKILL');
      await once(w.child, 'exit');
      await waitFor(() => !pidAlive(pid), 'the killed worker to disappear');
      await queue.finish(item, { state: 'finished', exitCode: 0, runId: `run-${id}` });
      const record = await queue.get(id);
      expect(record).toMatchObject({ state: 'finished', runState: 'finished', exitCode: 0, attempts: 1 });

      offset = 10 * 60_000; // far past any lease
      expect(await queue.recoverExpired()).toBe(0);
      const { id: agentId } = await queue.register({ queues: ['q'], hostname: 'h', version: 'v', config: {} });
      expect(await queue.pop('q', agentId)).toBeNull();
      await queue.close();
    } finally {
      await cleanup();
    }
  });

  it('keeps the claim of a live agent that heartbeats, long past its first lease', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const leaseMs = 200;
      const queue = createEmbeddedQueue({ stateDir: dir, leaseMs });
      const { id } = await queue.enqueue({ queue: 'q', spec: { name: 'long job' } });
      const w = startWorker('claim', dir, 'q', String(leaseMs));
      const { agentId } = await w.next<{ agentId: string }>('claimed');
      const first = await queue.get(id);
      const claimedAt = Date.parse(first!.claimedAt!);
      // Wait (on the record, not a sleep) until the worker has renewed its lease past three leases.
      await waitFor(async () => {
        const r = await queue.get(id);
        return r?.leaseUntil !== undefined && Date.parse(r.leaseUntil) > claimedAt + 3 * leaseMs;
      }, 'the worker to renew its lease');
      expect(Date.now()).toBeGreaterThan(claimedAt + 2 * leaseMs);
      expect(await queue.recoverExpired()).toBe(0);
      const record = await queue.get(id);
      expect(record).toMatchObject({ state: 'acked', claimedBy: agentId, attempts: 1 });
      const { id: other } = await queue.register({ queues: ['q'], hostname: 'h', version: 'v', config: {} });
      expect(await queue.pop('q', other)).toBeNull();
    } finally {
      await cleanup();
    }
  });

  it('wakes a subscriber at once when another process enqueues', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      // A one-minute fallback poll: only the file watcher can deliver the wake-up in time.
      const queue = createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000 });
      await queue.register({ queues: ['wake'], hostname: 'h', version: 'v', config: {} });
      let wokenAt = 0;
      const unsubscribe = queue.subscribe(() => {
        wokenAt ||= Date.now();
      });
      const w = startWorker('enqueue', dir, 'wake', 'from-afar');
      const { enqueued, at } = await w.next<{ enqueued: string; at: number }>('enqueued');
      await waitFor(() => wokenAt > 0, 'the subscriber to wake', 5000);
      const latency = wokenAt - at;
      expect(latency).toBeLessThan(1000);
      const { id: agentId } = await queue.register({ queues: ['wake'], hostname: 'h', version: 'v', config: {} });
      expect((await queue.pop('wake', agentId))?.id).toBe(enqueued);
      unsubscribe();
      await queue.close();
    } finally {
      await cleanup();
    }
  });
});
