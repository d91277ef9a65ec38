import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, createAgent, createEmbeddedQueue, type QueueSource } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners/local-process';
import { waitFor } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createLaunchMetrics } from './metrics.js';
import { startHealthServer } from './server.js';
import { agentFixture, cleanUp, command, getJson, jobsEnded, metric, next, parseMetrics, scrape } from './test-helpers.js';

afterEach(cleanUp);

describe('health server on a real agent', () => {
  it('counts the jobs actually run and failed, and answers /readyz and /healthz through the agent life', async () => {
    const { agent, queue, health } = await agentFixture();
    expect(health.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    // Before start: alive (just created) but not ready.
    const before = await getJson(`${health.url}/readyz`);
    expect(before.status).toBe(503);
    expect(before.body).toMatchObject({ ok: false, status: 'starting', agent: { status: 'STARTING' } });
    expect((await getJson(`${health.url}/healthz`)).body).toMatchObject({ ok: true, status: 'starting' });
    expect(metric(await scrape(health), 'launch_agent_ready')).toBe(0);

    const ok1 = await queue.enqueue({ queue: 'default', spec: command('true') });
    const fail1 = await queue.enqueue({ queue: 'default', spec: command('false') });
    const fail3 = await queue.enqueue({ queue: 'gpu', spec: command('sh', '-c', 'exit 3') });
    const ok2 = await queue.enqueue({ queue: 'gpu', spec: command('true') });
    const ended = jobsEnded(agent, 4);
    await agent.start();

    const ready = await getJson(`${health.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ok: true, status: 'ready' });
    await ended;
    await waitFor(() => agent.snapshot().running.length === 0, { what: 'every slot to be freed' });

    // The queue's own records are the truth the counters must match.
    const records = new Map((await queue.list()).map((r) => [r.id, r]));
    expect(records.get(ok1.id)).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(records.get(ok2.id)).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(records.get(fail1.id)).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(records.get(fail3.id)).toMatchObject({ state: 'failed', exitCode: 3 });

    const m = await scrape(health);
    for (const queueName of ['default', 'gpu']) {
      const mine = [...records.values()].filter((r) => r.queue === queueName);
      const finished = mine.filter((r) => r.state === 'finished').length;
      const failed = mine.filter((r) => r.state === 'failed').length;
      expect(metric(m, 'launch_jobs_claimed_total', { queue: queueName })).toBe(mine.length);
      expect(metric(m, 'launch_jobs_total', { queue: queueName, state: 'finished' })).toBe(finished);
      expect(metric(m, 'launch_jobs_total', { queue: queueName, state: 'failed' })).toBe(failed);
      expect(metric(m, 'launch_job_failures_total', { queue: queueName, stage: 'run' })).toBe(failed);
      expect(metric(m, 'launch_run_duration_seconds_count', { queue: queueName, state: 'finished' })).toBe(finished);
      expect(metric(m, 'launch_run_duration_seconds_count', { queue: queueName, state: 'failed' })).toBe(failed);
      expect(metric(m, 'launch_queue_pops_total', { queue: queueName, result: 'item' })).toBe(mine.length);
      expect(metric(m, 'launch_queue_pop_duration_seconds_count', { queue: queueName })).toBe(metric(m, 'launch_queue_pops_total', { queue: queueName }));
    }
    expect(metric(m, 'launch_jobs_total')).toBe(4);
    expect(metric(m, 'launch_job_failures_total')).toBe(2);
    expect(metric(m, 'launch_job_failures_total', { stage: 'build' }) + metric(m, 'launch_job_failures_total', { stage: 'agent' })).toBe(0);
    expect(metric(m, 'launch_queue_source_request_duration_seconds_count', { source: 'embedded', operation: 'register' })).toBe(1);
    expect(metric(m, 'launch_queue_source_request_duration_seconds_count', { operation: 'ack' })).toBe(4);
    expect(metric(m, 'launch_queue_source_request_duration_seconds_count', { operation: 'fail' })).toBe(2);
    expect(metric(m, 'launch_queue_source_errors_total')).toBe(0);
    expect(metric(m, 'launch_agent_errors_total')).toBe(0);
    expect(metric(m, 'launch_builds_total')).toBe(0);
    expect(metric(m, 'launch_slots_in_use', { kind: 'job' })).toBe(0);
    expect(metric(m, 'launch_slots_max', { kind: 'job' })).toBe(2);
    expect(metric(m, 'launch_agent_ready')).toBe(1);
    expect(metric(m, 'launch_agent_last_loop_timestamp_seconds')).toBeGreaterThan(0);

    const alive = await getJson(`${health.url}/healthz`);
    expect(alive.status).toBe(200);
    expect(alive.body).toMatchObject({ ok: true, status: 'ok', agent: { running: 0, maxJobs: 2 } });

    await agent.stop('test stop');
    const afterReady = await getJson(`${health.url}/readyz`);
    expect(afterReady.status).toBe(503);
    expect(afterReady.body).toMatchObject({ ok: false, status: 'stopped', reason: 'the agent stopped: test stop' });
    const afterAlive = await getJson(`${health.url}/healthz`);
    expect(afterAlive.status).toBe(503);
    expect(afterAlive.body).toMatchObject({ ok: false, status: 'stopped' });
    expect(metric(await scrape(health), 'launch_agent_ready')).toBe(0);
  });

  it('is not ready until every backend check passes: verifying, then the failure named, then ready once a recheck passes', async () => {
    const calls: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
    const check = {
      name: 'builder kaniko',
      run: () => new Promise<void>((resolve, reject) => void calls.push({ resolve, reject })),
    };
    const { agent, health } = await agentFixture({ checks: [check], recheckMs: 50 });
    await agent.start();
    // Registered and serving, but the builder's check has not answered.
    const verifying = await getJson(`${health.url}/readyz`);
    expect(verifying.status).toBe(503);
    expect(verifying.body).toMatchObject({ ok: false, status: 'verifying', reason: 'verifying builder kaniko', checks: { 'builder kaniko': 'pending' } });
    expect(metric(await scrape(health), 'launch_agent_ready')).toBe(0);

    calls[0]!.reject(new LaunchError({ code: 'context_store.no_bucket', message: 'S3 bucket "ctx" does not exist' }));
    await waitFor(async () => (await getJson(`${health.url}/readyz`)).body.status === 'unverified', { what: '/readyz to name the failure' });
    const failed = await getJson(`${health.url}/readyz`);
    expect(failed.status).toBe(503);
    expect(failed.body).toMatchObject({
      reason: 'builder kaniko: S3 bucket "ctx" does not exist',
      checks: { 'builder kaniko': 'failed: S3 bucket "ctx" does not exist' },
    });
    // Liveness does not depend on backends: the loop turns.
    expect((await getJson(`${health.url}/healthz`)).status).toBe(200);

    // Checked again after recheckMs; this time it passes.
    await waitFor(() => calls.length === 2, { what: 'the check to run again' });
    calls[1]!.resolve();
    await waitFor(async () => (await getJson(`${health.url}/readyz`)).status === 200, { what: '/readyz to turn ready' });
    expect((await getJson(`${health.url}/readyz`)).body).toMatchObject({ ok: true, status: 'ready', checks: { 'builder kaniko': 'ok' } });
    expect(metric(await scrape(health), 'launch_agent_ready')).toBe(1);
    expect(calls).toHaveLength(2);
  });

  it('shows a slot in use while a job runs', async () => {
    const { agent, queue, health } = await agentFixture();
    await queue.enqueue({ queue: 'gpu', spec: command('sleep', '30') });
    const submitted = next(agent, 'run:submitted');
    await agent.start();
    await submitted;
    const m = await scrape(health);
    expect(metric(m, 'launch_slots_in_use', { kind: 'job' })).toBe(1);
    expect(metric(m, 'launch_slots_in_use', { kind: 'scheduler' })).toBe(0);
    // A stop terminates the local run and puts it back on the queue: counted as requeued.
    await agent.stop('test stop');
    const after = await scrape(health);
    expect(metric(after, 'launch_jobs_total', { queue: 'gpu', state: 'requeued' })).toBe(1);
    expect(metric(after, 'launch_run_duration_seconds_count', { queue: 'gpu', state: 'requeued' })).toBe(1);
    expect(metric(after, 'launch_slots_in_use', { kind: 'job' })).toBe(0);
  });

  it('stays alive but not ready while a stop terminates the runs', async () => {
    // The job ignores TERM, so the stop waits out the kill grace period; the test ends it with KILL.
    const { agent, queue, health } = await agentFixture({ killGracePeriodMs: 120_000 });
    await queue.enqueue({ queue: 'default', spec: command('sh', '-c', 'trap "" TERM; sleep 120') });
    let pid = 0;
    const submitted = new Promise<void>((resolve) =>
      agent.on('run:submitted', ({ backendId }) => {
        pid = Number(backendId);
        resolve();
      }),
    );
    await agent.start();
    await submitted;
    expect(pid).toBeGreaterThan(0);
    const killed = new Promise<void>((resolve) => agent.on('agent:status', ({ status }) => status === 'KILLED' && resolve()));
    const stopping = agent.stop('test stop');
    try {
      await killed;
      const live = await getJson(`${health.url}/healthz`);
      expect(live.status).toBe(200);
      expect(live.body).toMatchObject({ ok: true, status: 'stopping', agent: { running: 1 } });
      const ready = await getJson(`${health.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ ok: false, status: 'stopping' });
    } finally {
      process.kill(-pid, 'SIGKILL');
    }
    await stopping;
    expect((await getJson(`${health.url}/healthz`)).body).toMatchObject({ ok: false, status: 'stopped' });
  });

  it('fails /healthz when the loop stops turning, and recovers when it turns again', async () => {
    let offset = 0;
    const now = () => Date.now() + offset;
    // Hour-long poll intervals: after its first turn the loop only turns when work arrives.
    const { agent, queue, health } = await agentFixture({ pollIntervalMs: 3_600_000, staleAfterMs: 5000, now });
    const firstTurn = next(agent, 'agent:idle');
    await agent.start();
    await firstTurn;
    expect((await getJson(`${health.url}/healthz`)).status).toBe(200);

    offset += 60_000;
    const stale = await getJson(`${health.url}/healthz`);
    expect(stale.status).toBe(503);
    expect(stale.body).toMatchObject({ ok: false, status: 'stale', staleAfterSeconds: 5 });
    expect(String(stale.body.reason)).toMatch(/^the agent loop has not turned for 6\d(\.\d)? s \(limit 5 s\)$/);
    // Readiness is about registration, not liveness.
    expect((await getJson(`${health.url}/readyz`)).status).toBe(200);

    const turned = next(agent, 'agent:poll', 'agent:status');
    await queue.enqueue({ queue: 'default', spec: command('true') });
    await turned;
    const back = await getJson(`${health.url}/healthz`);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ ok: true });
  });

  it('names the queue whose pop hangs', async () => {
    let offset = 0;
    const now = () => Date.now() + offset;
    let hold = true;
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    // The real queue behind a pop that hangs for queue "gpu", as a network call without a timeout would.
    const wrap = (q: QueueSource): QueueSource =>
      new Proxy(q, {
        get(target, prop) {
          if (prop === 'pop') {
            return async (queueName: string, agentId: string) => {
              if (hold && queueName === 'gpu') await held;
              return target.pop(queueName, agentId);
            };
          }
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    const { agent, health, metrics } = await agentFixture({ wrap, staleAfterMs: 5000, now });
    try {
      await agent.start();
      await waitFor(() => metrics.pendingPops().some((p) => p.queue === 'gpu'), { what: 'the pop from gpu to start' });
      offset += 30_000;
      const wedged = await getJson(`${health.url}/healthz`);
      expect(wedged.status).toBe(503);
      expect(wedged.body).toMatchObject({ ok: false, status: 'wedged' });
      expect(String(wedged.body.reason)).toMatch(/^a pop from queue "gpu" has not returned for 30(\.\d)? s \(limit 5 s\)$/);
      const turned = next(agent, 'agent:poll');
      hold = false;
      release();
      await turned;
      expect((await getJson(`${health.url}/healthz`)).status).toBe(200);
      expect(metrics.pendingPops()).toEqual([]);
    } finally {
      hold = false;
      release();
    }
  });
});

describe('health server endpoints', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  /** An agent that is never started: the endpoints answer from its snapshot. */
  const idleAgent = () => {
    const dir = mkdtempSync(join(tmpdir(), 'launch-health-idle-'));
    dirs.push(dir);
    const runners = [createLocalProcessRunner({ logDir: join(dir, 'logs') })];
    return createAgent({ source: createEmbeddedQueue({ stateDir: dir, fsync: false }), queues: ['default'], runners });
  };

  it('binds 127.0.0.1 by default and releases its port on close', async () => {
    const health = await startHealthServer({ agent: idleAgent(), port: 0 });
    expect(health.url).toBe(`http://127.0.0.1:${health.port}`);
    expect((await fetch(`${health.url}/healthz`)).status).toBe(200);
    await health.close();
    await health.close(); // idempotent
    await expect(fetch(`${health.url}/healthz`)).rejects.toThrow();
    // The port is free again: a new listener gets exactly it.
    const other = createServer();
    await new Promise<void>((resolve, reject) => {
      other.once('error', reject);
      other.listen(health.port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  it('closes keep-alive connections instead of waiting for them', async () => {
    const health = await startHealthServer({ agent: idleAgent(), port: 0 });
    const res = await fetch(`${health.url}/metrics`, { headers: { connection: 'keep-alive' } });
    expect(res.status).toBe(200);
    await res.text();
    await health.close(); // would hang for the keep-alive timeout if open connections were left
  });

  it('answers 404, 405 and HEAD as HTTP says', async () => {
    const health = await startHealthServer({ agent: idleAgent(), port: 0 });
    try {
      const missing = await fetch(`${health.url}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: 'not found: try /healthz, /readyz, /metrics' });
      const post = await fetch(`${health.url}/healthz`, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
      const head = await fetch(`${health.url}/readyz`, { method: 'HEAD' });
      expect(head.status).toBe(503);
      expect(await head.text()).toBe('');
      const metrics = await fetch(`${health.url}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await metrics.text();
      expect(text).toContain('# TYPE launch_jobs_total counter');
      expect(text).not.toContain('process_cpu_user_seconds_total');
    } finally {
      await health.close();
    }
  });

  it('exports process metrics only when asked', async () => {
    const health = await startHealthServer({ agent: idleAgent(), port: 0, processMetrics: true });
    try {
      const samples = parseMetrics(await (await fetch(`${health.url}/metrics`)).text());
      // CPU time is counted from the registration on, in the kernel's ticks: a short, idle test may see 0 of it.
      expect(samples.filter((s) => s.name === 'process_cpu_user_seconds_total').map((s) => s.value >= 0)).toEqual([true]);
      expect(metric(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    } finally {
      await health.close();
    }
  });

  it('refuses bad options naming the field', async () => {
    const agent = idleAgent();
    await expect(startHealthServer({ agent, port: 70_000 })).rejects.toThrow(/port: .*70000/);
    await expect(startHealthServer({ agent, prot: 9464 } as never)).rejects.toThrow(/unknown key "prot" \(did you mean "port"\?\)/);
    await expect(startHealthServer({ agent: {} as never, port: 0 })).rejects.toThrow(/agent: an agent from createAgent\(\)/);
    await expect(startHealthServer({ agent, port: 0, metrics: createLaunchMetrics(), processMetrics: true })).rejects.toThrow(
      /processMetrics: processMetrics applies only when the server makes its own metrics/,
    );
  });

  it('says which port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await startHealthServer({ agent: idleAgent(), port }).catch((e: unknown) => e);
      expect(LaunchError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ code: 'health.listen_failed', hint: `another process uses port ${port}: pick another --health-port` });
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
