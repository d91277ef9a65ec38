/**
 * A Launch agent with the local-container runner in its own process, for the kill -9 / restart and orphan
 * guard tests (`node --import tsx agent-process.fixture.ts`). Prints one JSON line per agent event on stdout.
 */
import { createAgent, createEmbeddedQueue } from '@launch/core';
import { createLocalContainerRunner } from './runner.js';

const env = process.env;
// The parent may stop reading (it killed us, or it is done): exit quietly.
process.stdout.on('error', () => process.exit(0));
const queue = createEmbeddedQueue({ stateDir: env.LAUNCH_STATE_DIR!, fsync: false, leaseMs: Number(env.LAUNCH_LEASE_MS ?? 1000) });
const runner = createLocalContainerRunner({
  socketPath: env.LAUNCH_DOCKER_SOCKET!,
  logDir: env.LAUNCH_LOG_DIR!,
  agentName: env.LAUNCH_AGENT_NAME!,
  killGracePeriodMs: 1_000,
  orphanGuard: env.LAUNCH_ORPHAN_GUARD === '1',
});
const debug = (level: string) => (obj: unknown, msg?: string) => {
  if (env.LAUNCH_DEBUG) process.stderr.write(`${level} ${msg ?? ''} ${JSON.stringify(obj, (_k, v) => (v instanceof Error ? v.message : v))}\n`);
};
const logger = { debug: debug('debug'), info: debug('info'), warn: debug('warn'), error: debug('error') };
const agent = createAgent({
  logger,
  source: queue,
  queues: ['default'],
  runners: [runner],
  maxJobs: -1,
  monitorIntervalMs: 50,
  defaultResource: 'local-container',
  env: {},
  apiKey: 'child-agent-key-1234567890',
});
const out = (event: string, payload: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ event, ...payload })}\n`);
agent.on('run:submitted', (e) => out('submitted', { itemId: e.item.id, backendId: e.backendId }));
agent.on('item:finished', (e) => out('finished', { itemId: e.item.id, state: e.state }));
agent.on('item:failed', (e) => out('failed', { itemId: e.item.id, message: e.message }));
agent.on('run:state', (e) => out('state', { itemId: e.item.id, state: e.state }));
agent.on('item:claimed', (e) => out('claimed', { itemId: e.item.id }));
agent.on('item:requeued', (e) => out('requeued', { itemId: e.item.id }));
agent.on('agent:error', (e) => out('error', { where: e.where, message: e.error.message }));
await agent.start();
out('started', { pid: process.pid });
