// An agent process built from the *built* libraries (packages/*/dist), wired like the CLI's session
// (embedded queue, local-process runner, createAgent) but with the queue's fsync option selectable,
// so the benchmarks can compare fsync on and off. Prints the CLI's JSON progress events on stderr.
//   BENCH_STATE_DIR, BENCH_MAX_JOBS, BENCH_FSYNC (1|0), BENCH_EXIT_WHEN_IDLE (1|0)
import { join } from 'node:path';
import { createAgent, createEmbeddedQueue } from '../../packages/core/dist/index.js';
// The subpath the CLI uses, so the Kubernetes client is not loaded (it adds ~60 MiB and slows every fork).
import { createLocalProcessRunner } from '../../packages/runners/dist/local-process.js';

const stateDir = process.env.BENCH_STATE_DIR;
if (!stateDir) throw new Error('BENCH_STATE_DIR is required');
const line = (event, fields = {}) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);

const queue = createEmbeddedQueue({ stateDir, fsync: process.env.BENCH_FSYNC !== '0' });
const runner = createLocalProcessRunner({ logDir: join(stateDir, 'logs') });
const env = { ...process.env };
for (const key of Object.keys(env)) if (key.startsWith('BENCH_')) delete env[key];
const agent = createAgent({
  source: queue,
  queues: ['default'],
  runners: [runner],
  maxJobs: Number(process.env.BENCH_MAX_JOBS ?? 1),
  env,
  filesDir: join(stateDir, 'files'),
  version: 'launch-bench-library',
});
agent.on('agent:registered', (e) => line('agent:registered', e));
agent.on('item:claimed', ({ item }) => line('item:claimed', { item: item.id }));
agent.on('run:submitted', ({ item, runId, backendId }) => line('run:submitted', { item: item.id, runId, backendId }));
agent.on('item:finished', ({ item, runId, state, status }) => line('item:finished', { item: item.id, runId, state, exitCode: status.exitCode }));
agent.on('item:failed', ({ item, stage, message }) => line('item:failed', { item: item.id, stage, message }));
let idleCheck = false;
if (process.env.BENCH_EXIT_WHEN_IDLE === '1') {
  agent.on('agent:idle', () => {
    if (idleCheck) return;
    idleCheck = true;
    void queue.counts({ queue: 'default' }).then((c) => {
      idleCheck = false;
      if (c.queued === 0 && c.claimed === 0) void agent.stop('idle');
    });
  });
}
const keepAlive = setInterval(() => {}, 1 << 30);
process.once('SIGTERM', () => void agent.stop('signal SIGTERM'));
agent.on('agent:stopped', ({ reason }) => line('agent:stopped', { reason }));
await agent.start();
await agent.stopped;
clearInterval(keepAlive);
await runner.close();
await queue.close();
