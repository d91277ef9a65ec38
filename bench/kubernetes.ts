/**
 * Kubernetes runner benchmark: 500 concurrent jobs through a real agent process (embedded queue, Kubernetes
 * runner) against the in-process Kubernetes test server. Measures API requests per job lifecycle (beyond the
 * watches), watches open, and the agent process's RSS and CPU.
 *
 *   npx tsx bench/kubernetes.ts
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
const fixture = join(root, 'packages/runners/src/kubernetes/agent-process.fixture.ts');

type Line = { event: string; itemId?: string; rss?: number; cpuMicros?: number; informers?: number; [k: string]: unknown };

export async function run(): Promise<Record<string, unknown>> {
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
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
      cwd: root,
      env: {
        ...process.env,
        LAUNCH_STATE_DIR: stateDir,
        LAUNCH_KUBECONFIG: server.kubeconfigPath,
        LAUNCH_AGENT_NAME: 'bench-agent',
        LAUNCH_LEASE_MS: '120000',
        LAUNCH_STATS_MS: '250',
        LAUNCH_MONITOR_MS: '10000',
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
    // One more stats line so CPU covers the whole run.
    await new Promise<void>((resolve) => {
      const rl = createInterface(child.stdout!);
      rl.on('line', (text) => {
        const l = JSON.parse(text) as Line;
        if (l.event === 'stats') {
          last = l;
          peakRss = Math.max(peakRss, l.rss ?? 0);
          rl.close();
          resolve();
        }
      });
    });
    child.kill('SIGKILL');

    const api = server.requests.filter((r) => !r.watch);
    const byKind = new Map<string, number>();
    for (const r of api) {
      const what = `${r.method} ${r.path
        .replace(/\/namespaces\/[^/]+/, '/namespaces/*')
        .replace(/\/(jobs|secrets|pods)\/[^/]+/, '/$1/*')}`;
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
      informers: last?.informers,
      agentPeakRssMiB: Number((peakRss / 1024 / 1024).toFixed(1)),
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
      `  agent peak RSS                 ${result.agentPeakRssMiB} MiB`,
      `  agent CPU                      ${result.agentCpuSeconds} s (${result.agentCpuPercentOfOneCore}% of one core)`,
      '  requests:',
      ...[...byKind].sort((a, b) => b[1] - a[1]).map(([k, v]) => `    ${String(v).padStart(6)}  ${k}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    writeResult('kubernetes', result);
    return result;
  } finally {
    await queue.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
