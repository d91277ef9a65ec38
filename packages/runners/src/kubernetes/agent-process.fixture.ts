/**
 * A Launch agent with the Kubernetes runner in its own process, for the kill -9 / restart test
 * (`npx tsx agent-process.fixture.ts`). Prints one JSON line per agent event on stdout.
 */
import { createAgent, createEmbeddedQueue } from '@launch/core';
import { createKubernetesRunner } from './runner.js';

const env = process.env;
// The parent may stop reading (it killed us, or it is done): exit quietly.
process.stdout.on('error', () => process.exit(0));
const queue = createEmbeddedQueue({ stateDir: env.LAUNCH_STATE_DIR!, fsync: false, leaseMs: Number(env.LAUNCH_LEASE_MS ?? 1000) });
const runner = createKubernetesRunner({
  kubeconfigPath: env.LAUNCH_KUBECONFIG!,
  agentName: env.LAUNCH_AGENT_NAME!,
  watchBackoffMs: { initial: 10, max: 100 },
});
const agent = createAgent({
  source: queue,
  queues: ['gpu'],
  runners: [runner],
  maxJobs: -1,
  monitorIntervalMs: Number(env.LAUNCH_MONITOR_MS ?? 50),
  defaultResource: 'kubernetes',
  env: {},
  apiKey: 'child-agent-key-1234567890',
});
const out = (event: string, payload: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ event, ...payload })}\n`);
agent.on('run:submitted', (e) => out('submitted', { itemId: e.item.id, backendId: e.backendId }));
agent.on('item:finished', (e) => out('finished', { itemId: e.item.id, state: e.state }));
agent.on('item:failed', (e) => out('failed', { itemId: e.item.id, message: e.message }));
agent.on('agent:error', (e) => out('error', { where: e.where, message: e.error.message }));
await agent.start();
out('started', { pid: process.pid });
if (env.LAUNCH_STATS_MS) {
  // For the benchmark: the agent process's own memory and CPU, and the runner's watches.
  setInterval(() => {
    const cpu = process.cpuUsage();
    out('stats', { rss: process.memoryUsage().rss, cpuMicros: cpu.user + cpu.system, ...runner.watchStats() });
  }, Number(env.LAUNCH_STATS_MS)).unref();
}
