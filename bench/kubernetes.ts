/**
 * Kubernetes runner benchmark: 500 concurrent jobs through a real agent process (embedded queue, Kubernetes
 * runner) against the in-process Kubernetes test server. Measures API requests per job lifecycle (beyond the
 * watches), watches open, the agent process's RSS and CPU, and that the watches close once no run uses them.
 *
 * The agent is bench/lib/kubernetes-agent.mjs on the *built* libraries (packages/<name>/dist), so RSS is that of
 * the JavaScript users run (tsx compiling TypeScript in the same process would add its own memory):
 *
 *   npx -y pnpm@10 build && npx tsx bench/kubernetes.ts
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createEmbeddedQueue } from '@launch/core';
import { startKubeTestServer } from '@launch/testkit';
import { runIfMain, writeResult } from './lib/results.js';

const JOBS = Number(process.env.BENCH_K8S_JOBS ?? 500);
const FAIL_EVERY = 10; // every 10th job fails, so failed-pod log reads are counted too
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const agentScript = join(here, 'lib/kubernetes-agent.mjs');
/** Agent RSS target with 500 runs in flight (issue 8). */
export const KUBERNETES_RSS_TARGET_MIB = 150;
/** The benchmark's agent closes a namespace's watches this long after its last run (the runner's `watchIdleMs`). */
const WATCH_IDLE_MS = 1000;

type Line = { event: string; itemId?: string; rss?: number; cpuMicros?: number; informers?: number; [k: string]: unknown };

export async function run(): Promise<Record<string, unknown>> {
  for (const built of ['packages/core/dist/index.js', 'packages/runners/dist/kubernetes.js']) {
    if (!existsSync(join(root, built))) throw new Error(`${built} is missing: build first (npx -y pnpm@10 build)`);
  }
  const server = await startKubeTestServer({ kubelet: { stepDelayMs: 20 } });
  const dir = mkdtempSync(join(tmpdir(), 'launch-bench-k8s-'));
  const stateDir = join(dir, 'queue');
  const queue = createEmbeddedQueue({ stateDir, fsync: false });
  try {
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const script = i % FAIL_EVERY === FAIL_EVERY - 1 ? 'echo failing; sleep 2; exit 3' : 'echo working; sleep 2; exit 0';
      const spec = { entity: 'bench', project: 'k8s', docker: { docker_image: 'busybox:1.36' }, overrides: { entry_point: ['sh', '-c'], args: [script] } };
      ids.push((await queue.enqueue({ queue: 'gpu', spec })).id);
    }
    // BENCH_CPU_PROF=<dir>: the agent writes a V8 CPU profile there when it exits (as the core benchmarks' agents do).
    const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
    const child = spawn(process.execPath, [...profile, agentScript], {
      cwd: root,
      env: {
        ...process.env,
        LAUNCH_STATE_DIR: stateDir,
        LAUNCH_KUBECONFIG: server.kubeconfigPath,
        LAUNCH_AGENT_NAME: 'bench-agent',
        LAUNCH_LEASE_MS: '120000',
        LAUNCH_STATS_MS: '250',
        LAUNCH_MONITOR_MS: '10000',
        LAUNCH_WATCH_IDLE_MS: String(WATCH_IDLE_MS),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let startedAt = 0;
    let cpuAtStart = 0;
    let peakRss = 0;
    let last: Line | undefined;
    let maxWatches = 0;
    const done = new Set<string>();
    const failed = new Set<string>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out with ${done.size}/${JOBS} jobs done`)), 10 * 60_000);
      createInterface(child.stdout!).on('line', (text) => {
        let l: Line;
        try {
          l = JSON.parse(text) as Line;
        } catch {
          return;
        }
        if (l.event === 'started') startedAt = Date.now();
        if (l.event === 'stats') {
          if (!cpuAtStart && l.cpuMicros) cpuAtStart = l.cpuMicros;
          peakRss = Math.max(peakRss, l.rss ?? 0);
          maxWatches = Math.max(maxWatches, server.openWatches());
          last = l;
        }
        if ((l.event === 'finished' || l.event === 'failed') && l.itemId) {
          done.add(l.itemId);
          if (l.event === 'failed') failed.add(l.itemId);
          if (done.size === JOBS) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.once('exit', (code) => reject(new Error(`agent exited (${code}) with ${done.size}/${JOBS} jobs done`)));
    });
    const elapsedMs = Date.now() - startedAt;
    const informersAtEnd = last?.informers;
    // One more stats line so CPU covers the whole run; then wait for the runner to close the idle watches.
    const endedAt = Date.now();
    let informersStoppedAfterMs: number | undefined;
    let endStats: Line | undefined;
    await new Promise<void>((resolve) => {
      const rl = createInterface(child.stdout!);
      const give = setTimeout(() => {
        rl.close();
        resolve();
      }, WATCH_IDLE_MS + 15_000);
      rl.on('line', (text) => {
        let l: Line;
        try {
          l = JSON.parse(text) as Line;
        } catch {
          return;
        }
        if (l.event !== 'stats') return;
        if (!endStats) {
          endStats = l;
          last = l;
          peakRss = Math.max(peakRss, l.rss ?? 0);
        }
        if (l.informers === 0 && server.openWatches() === 0) {
          informersStoppedAfterMs = Date.now() - endedAt;
          clearTimeout(give);
          rl.close();
          resolve();
        }
      });
    });
    child.kill('SIGKILL');

    const api = server.requests.filter((r) => !r.watch);
    const byKind = new Map<string, number>();
    for (const r of api) {
      const what = `${r.method} ${r.path.replace(/\/namespaces\/[^/]+/, '/namespaces/*').replace(/\/(jobs|secrets|pods)\/[^/]+/, '/$1/*')}`;
      byKind.set(what, (byKind.get(what) ?? 0) + 1);
    }
    const lists = api.filter((r) => r.method === 'GET' && /\/(jobs|pods)$/.test(r.path)).length;
    const result = {
      jobs: JOBS,
      failedJobs: failed.size,
      elapsedMs,
      apiRequests: api.length,
      apiRequestsPerJob: Number(((api.length - lists) / JOBS).toFixed(2)),
      informerLists: lists,
      watchRequests: server.requests.filter((r) => r.watch).length,
      maxOpenWatches: maxWatches,
      informers: informersAtEnd,
      watchIdleMs: WATCH_IDLE_MS,
      informersStoppedAfterMs: informersStoppedAfterMs ?? null,
      agentPeakRssMiB: Number((peakRss / 1024 / 1024).toFixed(1)),
      agent: 'bench/lib/kubernetes-agent.mjs (built packages/*/dist)',
      agentCpuSeconds: Number((((last?.cpuMicros ?? 0) - cpuAtStart) / 1e6).toFixed(2)),
      agentCpuPercentOfOneCore: Number(((((last?.cpuMicros ?? 0) - cpuAtStart) / 1e3 / elapsedMs) * 100).toFixed(1)),
      requestsByKind: Object.fromEntries([...byKind].sort((a, b) => b[1] - a[1])),
    };
    const lines = [
      `Kubernetes runner: ${JOBS} concurrent jobs (${failed.size} failing) through one agent process`,
      `  wall time                      ${(elapsedMs / 1000).toFixed(1)} s`,
      `  API requests per job           ${result.apiRequestsPerJob}  (target ≤ 5 beyond the watch)`,
      `  informer lists / watch reqs    ${lists} / ${result.watchRequests}`,
      `  watches open (max)             ${maxWatches}`,
      `  agent peak RSS                 ${result.agentPeakRssMiB} MiB  (target ≤ ${KUBERNETES_RSS_TARGET_MIB}: ${result.agentPeakRssMiB <= KUBERNETES_RSS_TARGET_MIB ? 'met' : 'NOT met'}; built JavaScript)`,
      `  watches closed after last run  ${informersStoppedAfterMs === undefined ? `NO (still open ${WATCH_IDLE_MS + 15_000} ms after)` : `${informersStoppedAfterMs} ms (watchIdleMs ${WATCH_IDLE_MS})`}`,
      `  agent CPU                      ${result.agentCpuSeconds} s (${result.agentCpuPercentOfOneCore}% of one core)`,
      '  requests:',
      ...[...byKind].sort((a, b) => b[1] - a[1]).map(([k, v]) => `    ${String(v).padStart(6)}  ${k}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    writeResult('kubernetes', result);
    const rssMet = result.agentPeakRssMiB <= KUBERNETES_RSS_TARGET_MIB;
    return {
      ...result,
      summary: [
        {
          benchmark: 'kubernetes',
          figure: `API requests per job (${JOBS} jobs)`,
          value: String(result.apiRequestsPerJob),
          target: '≤ 5',
          met: result.apiRequestsPerJob <= 5,
        },
        {
          benchmark: 'kubernetes',
          figure: 'agent peak RSS (built JS)',
          value: `${result.agentPeakRssMiB} MiB`,
          target: `≤ ${KUBERNETES_RSS_TARGET_MIB} MiB`,
          met: rssMet,
        },
        { benchmark: 'kubernetes', figure: 'agent CPU', value: `${result.agentCpuSeconds} s`, target: '', met: undefined },
        {
          benchmark: 'kubernetes',
          figure: 'watches closed after the last run',
          value: informersStoppedAfterMs === undefined ? 'no' : `${informersStoppedAfterMs} ms`,
          target: `≤ ${WATCH_IDLE_MS + 15_000} ms`,
          met: informersStoppedAfterMs !== undefined,
        },
      ],
    };
  } finally {
    await queue.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
