// The agent the Kubernetes benchmark measures, from the *built* libraries (packages/*/dist), so its RSS and
// CPU are those of the JavaScript users run, not of tsx compiling TypeScript on the fly: the embedded queue,
// the Kubernetes runner (through its subpath, as the CLI loads it) and createAgent, wired as the runner's
// agent-process fixture (packages/runners/src/kubernetes/agent-process.fixture.ts). One JSON line per
// event on stdout, and every LAUNCH_STATS_MS a `stats` line (RSS, CPU, the runner's watches).
//   LAUNCH_STATE_DIR, LAUNCH_KUBECONFIG, LAUNCH_AGENT_NAME, LAUNCH_LEASE_MS, LAUNCH_MONITOR_MS,
//   LAUNCH_STATS_MS, LAUNCH_WATCH_IDLE_MS
import { createAgent, createEmbeddedQueue } from '../../packages/core/dist/index.js';
import { createKubernetesRunner } from '../../packages/runners/dist/kubernetes.js';

const env = process.env;
// The parent may stop reading (it killed us, or it is done): exit quietly.
process.stdout.on('error', () => process.exit(0));
const queue = createEmbeddedQueue({ stateDir: env.LAUNCH_STATE_DIR, fsync: false, leaseMs: Number(env.LAUNCH_LEASE_MS ?? 1000) });
const runner = createKubernetesRunner({
  kubeconfigPath: env.LAUNCH_KUBECONFIG,
  agentName: env.LAUNCH_AGENT_NAME,
  watchBackoffMs: { initial: 10, max: 100 },
  ...(env.LAUNCH_WATCH_IDLE_MS ? { watchIdleMs: Number(env.LAUNCH_WATCH_IDLE_MS) } : {}),
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
const out = (event, payload) => process.stdout.write(`${JSON.stringify({ event, ...payload })}\n`);
agent.on('run:submitted', (e) => out('submitted', { itemId: e.item.id, backendId: e.backendId }));
agent.on('item:finished', (e) => out('finished', { itemId: e.item.id, state: e.state }));
agent.on('item:failed', (e) => out('failed', { itemId: e.item.id, message: e.message }));
agent.on('agent:error', (e) => out('error', { where: e.where, message: e.error.message }));
await agent.start();
out('started', { pid: process.pid });
if (env.LAUNCH_STATS_MS) {
  setInterval(() => {
    const cpu = process.cpuUsage();
    out('stats', { rss: process.memoryUsage().rss, cpuMicros: cpu.user + cpu.system, ...runner.watchStats() });
  }, Number(env.LAUNCH_STATS_MS)).unref();
}
