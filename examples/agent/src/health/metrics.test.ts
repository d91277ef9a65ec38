import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, createEmbeddedQueue, type Builder, type Runner } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners/local-process';
import { afterEach, describe, expect, it } from 'vitest';
import { createLaunchMetrics, errorPlace } from './metrics.js';
import { agentFixture, cleanUp, command, jobsEnded, metric, parseMetrics, scrape } from './test-helpers.js';

afterEach(cleanUp);

describe('build metrics', () => {
  it('counts builds by result and times them, from the agent build events', async () => {
    // A builder that reuses the image of jobs named "cached", fails those named "broken" and builds the rest.
    const builder: Builder = {
      specificationVersion: 'v1',
      name: 'test',
      async build(request) {
        if (request.spec.name === 'broken') {
          throw new LaunchError({ code: 'build.failed', stage: 'build', category: 'BuildFailed', message: 'the Dockerfile does not parse' });
        }
        return { imageUri: `localhost/test:${request.runId}`, cached: request.spec.name === 'cached' };
      },
    };
    // The local-process runner, declared as needing an image, so that the agent builds before it runs; the built
    // image is dropped on the way in (the local-process runner refuses images).
    const local = (logDir: string): Runner => {
      const base = createLocalProcessRunner({ logDir });
      return { ...base, capabilities: { ...base.capabilities, needsImage: true }, run: (request, ctx) => base.run({ ...request, image: undefined }, ctx) };
    };
    const dir = await mkdtemp(join(tmpdir(), 'launch-health-build-'));
    try {
      const { agent, queue, health } = await agentFixture({ agent: { builder, runners: [local(dir)] } });
      await queue.enqueue({ queue: 'default', spec: { ...command('true'), name: 'fresh' } });
      await queue.enqueue({ queue: 'default', spec: { ...command('true'), name: 'cached' } });
      await queue.enqueue({ queue: 'gpu', spec: { ...command('true'), name: 'broken' } });
      const ended = jobsEnded(agent, 3);
      await agent.start();
      await ended;
      const m = await scrape(health);
      expect(metric(m, 'launch_builds_total', { queue: 'default', result: 'built' })).toBe(1);
      expect(metric(m, 'launch_builds_total', { queue: 'default', result: 'cached' })).toBe(1);
      expect(metric(m, 'launch_builds_total', { queue: 'gpu', result: 'failed' })).toBe(1);
      expect(metric(m, 'launch_build_duration_seconds_count')).toBe(3);
      expect(metric(m, 'launch_job_failures_total', { queue: 'gpu', stage: 'build' })).toBe(1);
      expect(metric(m, 'launch_jobs_total', { queue: 'default', state: 'finished' })).toBe(2);
      // The broken job never reached the runner.
      expect(metric(m, 'launch_run_duration_seconds_count', { queue: 'gpu' })).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('instrumented queue source', () => {
  it('counts failed calls by operation and passes everything else through', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'launch-health-source-'));
    const queue = createEmbeddedQueue({ stateDir: dir, fsync: false });
    try {
      const metrics = createLaunchMetrics();
      const source = metrics.instrumentSource(queue);
      expect(source.capabilities).toBe(queue.capabilities);
      expect(source.name).toBe('embedded');
      expect(typeof source.enqueue).toBe('function');
      expect('noSuchMethod' in source).toBe(false);
      expect((source as unknown as Record<string, unknown>).noSuchMethod).toBeUndefined();

      const item = await source.enqueue({ queue: 'default', spec: command('true') });
      const reg = await source.register({ queues: ['default'], hostname: 'h', version: 'v', config: {} });
      const popped = await source.pop('default', reg.id);
      expect(popped?.id).toBe(item.id);
      expect(await source.pop('default', reg.id)).toBeNull();
      // Acknowledging an item that does not exist is refused by the real queue.
      const refused = await source.ack({ id: 'no-such-item', queue: 'default', spec: {} }, 'run1').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(Error);

      const m = parseMetrics(await metrics.text());
      expect(metric(m, 'launch_queue_pops_total', { queue: 'default', result: 'item' })).toBe(1);
      expect(metric(m, 'launch_queue_pops_total', { queue: 'default', result: 'empty' })).toBe(1);
      expect(metric(m, 'launch_queue_source_errors_total', { source: 'embedded', operation: 'ack' })).toBe(1);
      expect(metric(m, 'launch_queue_source_errors_total')).toBe(1);
      expect(metric(m, 'launch_queue_source_request_duration_seconds_count', { operation: 'ack' })).toBe(1);
      expect(metric(m, 'launch_queue_source_request_duration_seconds_count', { operation: 'pop' })).toBe(2);
      // enqueue is not a QueueSource operation: passed through, not timed.
      expect(metric(m, 'launch_queue_source_request_duration_seconds_count', { operation: 'enqueue' })).toBe(0);
      expect(metrics.pendingPops()).toEqual([]);
    } finally {
      await queue.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts the errors the agent survives by where they happened', async () => {
    const { agent, queue, health } = await agentFixture();
    // A throwing listener is an error the agent reports (agent:error, where "listener of item:claimed") and survives.
    agent.on('item:claimed', () => {
      throw new Error('a listener broke');
    });
    await queue.enqueue({ queue: 'gpu', spec: command('true') });
    const ended = jobsEnded(agent, 1);
    await agent.start();
    await ended;
    const m = await scrape(health);
    expect(metric(m, 'launch_agent_errors_total', { where: 'listener' })).toBe(1);
    expect(metric(m, 'launch_jobs_total', { queue: 'gpu', state: 'finished' })).toBe(1);
  });

  it('observes one agent at a time', async () => {
    const { metrics, agent } = await agentFixture();
    expect(() => metrics.observeAgent(agent)).toThrow(/already observe an agent/);
  });
});

describe('errorPlace', () => {
  it('keeps the operation and drops queue, runner and event names', () => {
    expect(errorPlace('pop from gpu-a100')).toBe('pop');
    expect(errorPlace('adopt (kubernetes)')).toBe('adopt');
    expect(errorPlace('ack (adopted)')).toBe('ack');
    expect(errorPlace('listener of item:claimed')).toBe('listener');
    expect(errorPlace('updateAgentStatus')).toBe('updateAgentStatus');
    expect(errorPlace('write error.log')).toBe('write_error.log');
    expect(errorPlace('')).toBe('unknown');
  });
});
