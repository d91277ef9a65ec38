/**
 * Micro-measure of the embedded queue's costs (not a test): `node --import tsx measure.ts`.
 * Prints one line per measure: median and p95 per operation, in milliseconds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEmbeddedQueue } from '../queue.js';

const stats = (label: string, samples: number[]) => {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(3);
  const total = samples.reduce((a, b) => a + b, 0);
  process.stdout.write(`${label.padEnd(52)} n=${String(s.length).padStart(4)}  p50 ${at(0.5)} ms  p95 ${at(0.95)} ms  total ${total.toFixed(0)} ms\n`);
};

async function timed<T>(samples: number[], fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  samples.push(performance.now() - t0);
  return out;
}

async function main() {
  for (const fsync of [true, false]) {
    const dir = await mkdtemp(join(tmpdir(), 'launch-measure-'));
    const q = createEmbeddedQueue({ stateDir: dir, fsync });
    const { id: agent } = await q.register({ queues: ['q'], hostname: 'm', version: 'm', config: {} });
    const spec = { job: 'team/project/job:latest', resource: 'local-process', overrides: { args: ['--epochs', '1'] } };
    const enq: number[] = [];
    for (let i = 0; i < 2000; i++) await timed(enq, () => q.enqueue({ queue: 'q', spec }));
    stats(`enqueue (fsync ${fsync})`, enq);
    const pops: number[] = [];
    const acks: number[] = [];
    const fins: number[] = [];
    for (;;) {
      const item = await timed(pops, () => q.pop('q', agent));
      if (!item) break;
      await timed(acks, () => q.ack(item, 'r'));
      await timed(fins, () => q.finish(item, { state: 'finished', exitCode: 0, runId: 'r' }));
    }
    pops.pop();
    stats(`pop from a 2000…1 backlog (fsync ${fsync})`, pops);
    stats(`ack (fsync ${fsync})`, acks);
    stats(`finish (fsync ${fsync})`, fins);
    const empty: number[] = [];
    for (let i = 0; i < 500; i++) await timed(empty, () => q.pop('q', agent));
    stats('pop from an empty queue (2000 done items)', empty);

    // In-process enqueue → subscriber woken → pop returns the item.
    const wake: number[] = [];
    for (let i = 0; i < 200; i++) {
      let woke!: () => void;
      const woken = new Promise<void>((r) => (woke = r));
      const off = q.subscribe(() => woke());
      const t0 = performance.now();
      await q.enqueue({ queue: 'q', spec });
      await woken;
      const item = await q.pop('q', agent);
      wake.push(performance.now() - t0);
      off();
      await q.finish(item!, { state: 'finished', exitCode: 0, runId: 'r' });
    }
    stats(`enqueue → wake → pop, same process (fsync ${fsync})`, wake);
    await q.close();
    await rm(dir, { recursive: true, force: true });
  }

  // Another process enqueues; we measure from its "enqueued" timestamp to our wake-up (fs.watch).
  const dir = await mkdtemp(join(tmpdir(), 'launch-measure-'));
  const q = createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000 });
  await q.register({ queues: ['x'], hostname: 'm', version: 'm', config: {} });
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const cross: number[] = [];
  for (let i = 0; i < 10; i++) {
    let wokenAt = 0;
    const off = q.subscribe(() => (wokenAt ||= Date.now()));
    // Asynchronous, so this process's event loop sees the watcher event while the child runs.
    const { stdout: out } = await promisify(execFile)(process.execPath, ['--import', 'tsx', worker, 'enqueue', dir, 'x', `n${i}`]);
    const { at } = JSON.parse(out.trim()) as { at: number };
    const deadline = Date.now() + 5000;
    while (!wokenAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    cross.push(wokenAt - at);
    off();
  }
  stats('enqueue in another process → wake (ms clock)', cross);
  await q.close();
  await rm(dir, { recursive: true, force: true });
}

void main();
