import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { layout } from './layout.js';
import { createEmbeddedQueue } from './queue.js';
import { tempStateDir, waitFor } from './test-helpers.js';

const workerPath = fileURLToPath(new URL('./__fixtures__/worker.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../../', import.meta.url));
const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** A worker process (see __fixtures__/worker.ts) whose JSON lines are collected. */
function worker(...args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', workerPath, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const next = <T>(key: string) =>
    waitFor(
      () => {
        if (child.exitCode !== null && child.exitCode !== 0) throw new Error(`worker exited ${child.exitCode}: ${err}`);
        const line = out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((m) => key in m);
        return line ? (line[key] as T) : undefined;
      },
      `the worker to report "${key}" (stderr: ${err})`,
      30_000,
    );
  return { child, next };
}

describe('embedded queue lookup and retention across processes', () => {
  it('get(id) in one process finds an item another process enqueued, claimed and finished', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const enq = worker('enqueue', dir, 'q', 'afar');
      const id = await enq.next<string>('enqueued');
      const queue = createEmbeddedQueue({ stateDir: dir, fsync: false });
      expect(await queue.get(id)).toMatchObject({ id, state: 'queued', spec: { name: 'afar' } });
      const { id: agent } = await queue.register({ queues: ['q'], hostname: 'h', version: 't', config: {} });
      const item = (await queue.pop('q', agent))!;
      await queue.ack(item, 'run-x');
      const during = worker('get', dir, '-', id);
      expect(await during.next<Record<string, unknown>>('record')).toMatchObject({ id, state: 'acked', runId: 'run-x' });
      await queue.finish(item, { state: 'finished', exitCode: 0, runId: 'run-x' });
      const after = worker('get', dir, '-', id);
      expect(await after.next<Record<string, unknown>>('record')).toMatchObject({ id, state: 'finished', exitCode: 0 });
      await queue.close();
    } finally {
      await cleanup();
    }
  });

  it('two processes pruning at once remove each surplus record once and keep the newest', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      const queue = createEmbeddedQueue({ stateDir: dir, fsync: false, retainDone: false });
      const { id: agent } = await queue.register({ queues: ['q'], hostname: 'h', version: 't', config: {} });
      const ids: string[] = [];
      for (let i = 0; i < 150; i++) ids.push((await queue.enqueue({ queue: 'q', spec: { i } })).id);
      for (let i = 0; i < 150; i++) {
        const item = (await queue.pop('q', agent))!;
        await queue.finish(item, { state: 'finished', exitCode: 0, runId: `r${i}` });
      }
      const done = layout(dir).done('q');
      const t = (Date.now() - 10 * 60_000) / 1000;
      for (const file of await readdir(done)) await utimes(join(done, file), t, t);

      const other = worker('prune', dir, '-', '10');
      await other.next('ready');
      const here = createEmbeddedQueue({ stateDir: dir, fsync: false, retainDone: { maxItems: 10 } });
      other.child.stdin!.write('go\n');
      const [mine, theirs] = await Promise.all([here.prune(), other.next<number>('removed')]);
      expect(mine + theirs).toBe(140);
      expect((await here.list({ queue: 'q' })).map((r) => r.id)).toEqual(ids.slice(140));
      await Promise.all([queue.close(), here.close()]);
    } finally {
      await cleanup();
    }
  });
});
