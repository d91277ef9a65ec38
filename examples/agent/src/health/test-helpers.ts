import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent, createEmbeddedQueue, type Agent, type AgentEventName, type AgentOptions, type EmbeddedQueue, type QueueSource } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners/local-process';
import { createLaunchMetrics, type LaunchMetrics } from './metrics.js';
import { startHealthServer, type HealthServer } from './server.js';

/** One sample of the Prometheus text format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (enough for our metrics: no escaped quotes in label values). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    const raw = m[3]!;
    out.push({ name: m[1]!, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels` (0 when none). */
export function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

export async function scrape(health: HealthServer): Promise<Sample[]> {
  const res = await fetch(`${health.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Resolves with the payload of the next `event` the agent emits. */
export function next<E extends AgentEventName>(agent: Pick<Agent, 'on'>, ...events: E[]): Promise<void> {
  return new Promise((resolve) => {
    const offs = events.map((e) =>
      agent.on(e, () => {
        for (const off of offs) off();
        resolve();
      }),
    );
  });
}

/** `promise`, or a rejection naming `what` after `ms`: a hang fails with the step it hung in. */
export function within<T>(promise: Promise<T>, what: string | (() => string), ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves once `count` jobs ended (finished, failed or requeued). */
export function jobsEnded(agent: Pick<Agent, 'on'>, count: number): Promise<void> {
  return new Promise((resolve) => {
    let n = 0;
    const one = () => {
      if (++n === count) resolve();
    };
    agent.on('item:finished', one);
    agent.on('item:failed', one);
    agent.on('item:requeued', one);
  });
}

export interface Fixture {
  dir: string;
  queue: EmbeddedQueue;
  metrics: LaunchMetrics;
  agent: Agent;
  health: HealthServer;
}

const cleanups: (() => Promise<void>)[] = [];

/** Stops every agent and server the fixtures made and removes their directories (call in afterEach). */
export async function cleanUp(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
}

/**
 * A real agent on a real embedded queue in a temp dir, running real local processes, with its health
 * server on a free loopback port. The agent is not started.
 */
export async function agentFixture(
  o: {
    pollIntervalMs?: number;
    staleAfterMs?: number;
    killGracePeriodMs?: number;
    now?: () => number;
    /** Wraps the queue before instrumentation (a slow source). */
    wrap?: (queue: EmbeddedQueue) => QueueSource;
    agent?: Partial<AgentOptions>;
    /** Backend checks for /readyz, and how often a failed one runs again. */
    checks?: Array<{ name: string; run: (signal: AbortSignal) => Promise<void> }>;
    recheckMs?: number;
  } = {},
): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'launch-health-'));
  const queue = createEmbeddedQueue({ stateDir: join(dir, 'queue'), fsync: false, pollIntervalMs: o.pollIntervalMs });
  const metrics = createLaunchMetrics({ now: o.now });
  const source = metrics.instrumentSource(o.wrap ? o.wrap(queue) : queue);
  const runners = o.agent?.runners ?? [createLocalProcessRunner({ logDir: join(dir, 'logs'), killGracePeriodMs: o.killGracePeriodMs ?? 1000 })];
  const agent = createAgent({
    source,
    queues: ['default', 'gpu'],
    runners,
    maxJobs: 2,
    pollIntervalMs: o.pollIntervalMs,
    env: { PATH: process.env.PATH },
    hostname: 'health-test',
    ...o.agent,
  });
  const health = await startHealthServer({
    agent,
    metrics,
    runners,
    port: 0,
    pollIntervalMs: o.pollIntervalMs,
    staleAfterMs: o.staleAfterMs,
    now: o.now,
    ...(o.checks ? { checks: o.checks } : {}),
    ...(o.recheckMs ? { recheckMs: o.recheckMs } : {}),
  });
  cleanups.push(async () => {
    await agent.stop('test over').catch(() => {});
    await health.close();
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, queue, metrics, agent, health };
}

export const command = (...entryPoint: string[]) => ({ resource: 'local-process', overrides: { entry_point: entryPoint } });
