/**
 * An embedder's agent in its own process (`node --import tsx agent-process.fixture.ts`): the embedded
 * queue, `createAgent` and the local-process runner, with `orphanGuard` on when `LAUNCH_ORPHAN_GUARD=1`.
 * It enqueues one long job and prints one JSON line per agent event on stdout, for the kill -9 tests.
 */
import { createAgent, createEmbeddedQueue } from '@launch/core';
import { createLocalProcessRunner } from './runner.js';

const env = process.env;
// The parent may stop reading (it killed us, or it is done): exit quietly.
process.stdout.on('error', () => process.exit(0));
const queue = createEmbeddedQueue({ stateDir: env.LAUNCH_STATE_DIR!, fsync: false });
const runner = createLocalProcessRunner({
  logDir: env.LAUNCH_LOG_DIR!,
  killGracePeriodMs: 1_000,
  orphanGuard: env.LAUNCH_ORPHAN_GUARD === '1',
});
const agent = createAgent({ source: queue, queues: ['default'], runners: [runner], env: { PATH: env.PATH ?? '/usr/bin:/bin' } });
const out = (event: string, payload: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ event, ...payload })}\n`);
agent.on('run:submitted', (e) => out('submitted', { itemId: e.item.id, backendId: e.backendId }));
agent.on('run:state', (e) => out('state', { itemId: e.item.id, state: e.state }));
agent.on('agent:error', (e) => out('error', { where: e.where, message: e.error.message }));
await queue.enqueue({ queue: 'default', spec: { resource: 'local-process', overrides: { entry_point: ['sleep', '300'] } } });
await agent.start();
out('started', { pid: process.pid });
// The libraries unref their timers; this process lives until it is killed.
setInterval(() => {}, 1 << 30);
