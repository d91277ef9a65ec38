/**
 * W&B source benchmark: enqueue → process-start latency through the W&B Launch test server (real
 * HTTP, real agent, real local processes) with the poll interval at 1 s and at W&B's 10 s default,
 * plus the GraphQL requests an idle agent makes per minute.
 *
 * Bounded run time (~1.5 min): the four measurements run at the same time, each against its own
 * server. Jobs are enqueued at random moments spread over a window (so they land at random points
 * of the poll cycle, as real users' jobs do) instead of one after another; with `max_jobs: -1`
 * several may be in flight at once, which is what lets ≥ 50 jobs fit in about a minute at 10 s.
 *
 *   npx tsx bench/wandb-latency.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners';
import { createWandbTestServer } from '@launch/testkit';
import { createWandbEnqueueClient, createWandbQueueSource } from '@launch/wandb';
import { runIfMain, waitUntil, writeResult } from './lib/results.js';
import { percentile } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const ENTITY = 'bench';
const QUEUE = 'bench';
const API_KEY = 'bench-key-0123456789abcdef0123456789abcdef';
const REGISTRATION_OPS = new Set(['Viewer', 'EntityIsTeam', 'ProjectRunQueues', 'createLaunchAgent', 'LaunchAgent']);

interface Harness {
  url: string;
  requests: Array<{ at: number; operation: string | undefined }>;
  items(): Array<{ pops: number }>;
  stop(): Promise<void>;
}

async function startAgent(pollIntervalMs: number, dir: string): Promise<Harness> {
  const server = await createWandbTestServer({ users: [{ apiKey: API_KEY, username: ENTITY }], queues: [{ entity: ENTITY, name: QUEUE }] });
  const source = createWandbQueueSource({ entity: ENTITY, apiKey: API_KEY, baseUrl: server.url, pollIntervalMs, env: {} });
  const runner = createLocalProcessRunner({ logDir: join(dir, 'logs'), killGracePeriodMs: 1000 });
  const agent = createAgent({
    source,
    queues: [QUEUE],
    runners: [runner],
    entity: ENTITY,
    apiKey: API_KEY,
    baseUrl: server.url,
    maxJobs: -1,
    env: { PATH: process.env.PATH },
    version: 'launch@bench',
  });
  await agent.start();
  return {
    url: server.url,
    requests: server.requests,
    items: () => server.itemsOf(ENTITY, QUEUE),
    async stop() {
      await agent.stop('bench over');
      await runner.close();
      await source.close!();
      await server.close();
    },
  };
}

export interface LatencyResult {
  pollIntervalMs: number;
  jobs: number;
  windowMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Enqueues `jobs` jobs at random moments over `windowMs`; each job records when its process started. */
async function latencyCase(pollIntervalMs: number, jobs: number, windowMs: number): Promise<LatencyResult> {
  const dir = mkdtempSync(join(tmpdir(), `wandb-bench-${pollIntervalMs}-`));
  const h = await startAgent(pollIntervalMs, dir);
  const enqueuer = createWandbEnqueueClient({ entity: ENTITY, apiKey: API_KEY, baseUrl: h.url, env: {} });
  try {
    const offsets = Array.from({ length: jobs }, () => Math.random() * windowMs).sort((a, b) => a - b);
    const began = Date.now();
    const enqueuedAt: number[] = [];
    for (const [i, offset] of offsets.entries()) {
      const wait = began + offset - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      enqueuedAt[i] = Date.now();
      // `date +%s%N` in the job itself: the moment the process runs, in the same clock.
      await enqueuer.enqueue({
        queue: QUEUE,
        spec: {
          entity: ENTITY,
          project: 'bench',
          resource: 'local-process',
          overrides: { entry_point: ['sh', '-c', `date +%s%N > ${join(dir, `start-${i}`)}`] },
        },
      });
    }
    const files = offsets.map((_, i) => join(dir, `start-${i}`));
    await waitUntil(() => files.every((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== ''), pollIntervalMs * 3 + 30_000, 'every job to start', 50);
    const latencies = files.map((f, i) => Number(BigInt(readFileSync(f, 'utf8').trim()) / 1_000_000n) - enqueuedAt[i]!).sort((a, b) => a - b);
    return {
      pollIntervalMs,
      jobs,
      windowMs,
      p50Ms: percentile(latencies, 50),
      p90Ms: percentile(latencies, 90),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies[latencies.length - 1]!,
      meanMs: Math.round(latencies.reduce((a, b) => a + b, 0) / latencies.length),
    };
  } finally {
    await enqueuer.close();
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface BurstResult {
  jobs: number;
  pollIntervalMs: number;
  /** From the first pop after the burst was enqueued to the last job's process start. */
  firstPopToLastStartMs: number;
  pops: number;
  acks: number;
  /** Items handed out more than once by the server. */
  itemsPoppedTwice: number;
}

/**
 * The burst of issue 7: `jobs` ordinary local-process jobs carrying W&B's placeholder uri, enqueued at once on an
 * idle agent (max_jobs -1, default max_schedulers 1). W&B's agent ran 20 of them in 12 s with 23 pops.
 */
async function burstCase(jobs: number, pollIntervalMs: number): Promise<BurstResult> {
  const dir = mkdtempSync(join(tmpdir(), `wandb-burst-`));
  const h = await startAgent(pollIntervalMs, dir);
  const enqueuer = createWandbEnqueueClient({ entity: ENTITY, apiKey: API_KEY, baseUrl: h.url, env: {} });
  try {
    for (let i = 0; i < jobs; i++) {
      await enqueuer.enqueue({
        queue: QUEUE,
        spec: {
          uri: 'placeholder-uri-scheduler',
          entity: ENTITY,
          project: 'bench',
          resource: 'local-process',
          overrides: { entry_point: ['sh', '-c', `date +%s%N > ${join(dir, `start-${i}`)}`] },
        },
      });
    }
    const enqueued = Date.now();
    const files = Array.from({ length: jobs }, (_, i) => join(dir, `start-${i}`));
    await waitUntil(
      () => files.every((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== ''),
      pollIntervalMs * 3 + 30_000,
      'every burst job to start',
      20,
    );
    const lastStart = Math.max(...files.map((f) => Number(BigInt(readFileSync(f, 'utf8').trim()) / 1_000_000n)));
    const firstPop = h.requests.find((r) => r.operation === 'popFromRunQueue' && r.at >= enqueued)!.at;
    const items = h.items();
    return {
      jobs,
      pollIntervalMs,
      firstPopToLastStartMs: lastStart - firstPop,
      pops: h.requests.filter((r) => r.operation === 'popFromRunQueue' && r.at >= enqueued).length,
      acks: h.requests.filter((r) => r.operation === 'ackRunQueueItem').length,
      itemsPoppedTwice: items.filter((i) => i.pops > 1).length,
    };
  } finally {
    await enqueuer.close();
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface IdleResult {
  pollIntervalMs: number;
  windowMs: number;
  requestsPerMinute: number;
  byOperation: Record<string, number>;
}

/** Counts the GraphQL requests of an agent with empty queues over one minute after registration. */
async function idleCase(pollIntervalMs: number, windowMs = 60_000): Promise<IdleResult> {
  const dir = mkdtempSync(join(tmpdir(), `wandb-idle-${pollIntervalMs}-`));
  const h = await startAgent(pollIntervalMs, dir);
  try {
    const from = Date.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const seen = h.requests.filter((r) => r.at >= from && r.at < from + windowMs && !(REGISTRATION_OPS.has(r.operation ?? '') && r.at < from));
    const byOperation: Record<string, number> = {};
    for (const r of seen) byOperation[r.operation ?? '?'] = (byOperation[r.operation ?? '?'] ?? 0) + 1;
    return { pollIntervalMs, windowMs, requestsPerMinute: Math.round((seen.length * 60_000) / windowMs), byOperation };
  } finally {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the benchmark; prints a table and writes `bench/results/wandb-latency.json`. */
export async function run(): Promise<Record<string, unknown>> {
  const started = Date.now();
  const [fast, standard, idleFast, idleStandard] = await Promise.all([
    latencyCase(1000, 60, 20_000),
    latencyCase(10_000, 60, 60_000),
    idleCase(1000),
    idleCase(10_000),
  ]);
  // Alone, so that its timing is not shared with the cases above.
  const burst = await burstCase(20, 10_000);
  const result = {
    name: 'wandb-latency',
    description: 'enqueue → process-start latency through the W&B Launch test server (real HTTP, createAgent, local-process runner)',
    method:
      "jobs enqueued at uniformly random moments over a window with max_jobs -1; latency = the job process's own start time (date +%s%N) minus the time just before pushToRunQueueByName; the four cases run concurrently on separate servers to bound run time",
    latency: [fast, standard],
    idle: [idleFast, idleStandard],
    burst,
    node: process.version,
    durationMs: Date.now() - started,
  };
  const rows = [
    ['poll interval', 'jobs', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms'],
    ...[fast, standard].map((l) => [
      `${l.pollIntervalMs / 1000} s`,
      String(l.jobs),
      String(l.p50Ms),
      String(l.p90Ms),
      String(l.p99Ms),
      String(l.maxMs),
      String(l.meanMs),
    ]),
  ];
  const lines = [
    'W&B source: enqueue → process start',
    formatTable(rows),
    '',
    'Idle agent, GraphQL requests per minute',
    ...[idleFast, idleStandard].map(
      (i) =>
        `  poll ${i.pollIntervalMs / 1000} s: ${i.requestsPerMinute}/min (${Object.entries(i.byOperation)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`,
    ),
    '',
    `Burst of ${burst.jobs} placeholder-uri local-process jobs (max_jobs -1): first pop → last process start ${burst.firstPopToLastStartMs} ms, ${burst.pops} pops, ${burst.acks} acks, ${burst.itemsPoppedTwice} items popped twice`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResult('wandb-latency', result);
  return result;
}

runIfMain(import.meta.url, run);
