/**
 * A second process for the embedded queue's multi-process tests (run with `node --import tsx`).
 * Reports on stdout, one JSON object per line.
 *
 *   worker.ts pop-all <stateDir> <queue>          pop and finish until the queue is empty
 *   worker.ts claim   <stateDir> <queue> <leaseMs> pop one item, ack it, heartbeat until killed
 *   worker.ts enqueue <stateDir> <queue> <name>    enqueue one item
 *   worker.ts get     <stateDir> -       <id>      print the item's record
 *   worker.ts prune   <stateDir> -       <max>     wait for "go" on stdin, prune keeping <max> per queue
 */
import { hostname } from 'node:os';
import { createEmbeddedQueue } from '../queue.js';

const [mode, stateDir, queueName, arg] = process.argv.slice(2) as [string, string, string, string | undefined];
const say = (value: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function main() {
  if (mode === 'pop-all') {
    const queue = createEmbeddedQueue({ stateDir, fsync: false });
    const { id: agentId } = await queue.register({ queues: [queueName], hostname: hostname(), version: 'test', config: {} });
    say({ ready: true });
    // Wait for the go signal on stdin, so both racers start together.
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
    const ids: string[] = [];
    for (;;) {
      const item = await queue.pop(queueName, agentId);
      if (!item) break;
      ids.push(item.id);
      await queue.ack(item, `run-${item.id}`);
      await queue.finish(item, { state: 'finished', exitCode: 0, runId: `run-${item.id}` });
    }
    say({ ids });
    await queue.close();
    process.exit(0);
  }
  if (mode === 'claim') {
    const leaseMs = Number(arg);
    const queue = createEmbeddedQueue({ stateDir, leaseMs, autoRenew: false });
    const { id: agentId } = await queue.register({ queues: [queueName], hostname: hostname(), version: 'test', config: {} });
    const item = await queue.pop(queueName, agentId);
    if (!item) throw new Error('nothing to claim');
    await queue.ack(item, `run-${item.id}`);
    // The explicit heartbeat API, as the agent calls it.
    setInterval(() => void queue.heartbeat(agentId, [item]), Math.max(leaseMs / 4, 5));
    say({ claimed: item.id, agentId, pid: process.pid });
    return;
  }
  if (mode === 'enqueue') {
    const queue = createEmbeddedQueue({ stateDir });
    const record = await queue.enqueue({ queue: queueName, spec: { name: arg } });
    say({ enqueued: record.id, at: Date.now() });
    process.exit(0);
  }
  if (mode === 'get') {
    const queue = createEmbeddedQueue({ stateDir });
    say({ record: (await queue.get(arg!)) ?? null });
    process.exit(0);
  }
  if (mode === 'prune') {
    const queue = createEmbeddedQueue({ stateDir, retainDone: { maxItems: Number(arg) } });
    say({ ready: true });
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
    say({ removed: await queue.prune() });
    process.exit(0);
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
