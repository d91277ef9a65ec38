import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, PRIORITY_VALUE } from '@launch/core';
import { createWandbTestServer, describeQueueSource, type WandbTestServer } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createWandbEnqueueClient } from './enqueue.js';
import { createWandbQueueSource } from './source.js';
import { captureLogger, errorText } from './test-support/capture-logger.js';

const fast = { retry: { baseDelayMs: 5, maxDelayMs: 20 }, env: {} };

describeQueueSource('wandb (through the W&B Launch test server)', async () => {
  const server = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'conformance' }] });
  const source = createWandbQueueSource({ entity: 'tester', apiKey: server.apiKey, baseUrl: server.url, ...fast });
  const enqueuer = createWandbEnqueueClient({ entity: 'tester', apiKey: server.apiKey, baseUrl: server.url, ...fast });
  return {
    source,
    enqueue: async (queue, spec, priority) => {
      await enqueuer.enqueue({ queue, spec, ...(priority ? { priority } : {}), validate: false });
    },
    cleanup: async () => {
      await enqueuer.close();
      await server.close();
    },
  };
});

const servers: WandbTestServer[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const s of servers.splice(0)) await s.close();
});

async function setup(options: Parameters<typeof createWandbTestServer>[0] = {}, sourceOptions: Record<string, unknown> = {}) {
  const server = await createWandbTestServer({
    queues: [
      { entity: 'tester', name: 'gpu' },
      { entity: 'tester', name: 'cpu' },
    ],
    ...options,
  });
  servers.push(server);
  const logger = captureLogger();
  const source = createWandbQueueSource({ entity: 'tester', apiKey: server.apiKey, baseUrl: server.url, logger, ...fast, ...sourceOptions });
  closers.push(() => source.close!());
  return { server, source, logger };
}

const info = (queues: string[], extra: Record<string, unknown> = {}) => ({ queues, hostname: 'host-1', version: 'launch@0.1.0', config: {}, ...extra });

describe('W&B queue source', () => {
  it('declares W&B capabilities: no notifications, a 10 s poll by default, configurable', async () => {
    const { source } = await setup();
    expect(source.capabilities).toEqual({ notify: false, pollIntervalMs: 10_000 });
    const { source: quick } = await setup({}, { pollIntervalMs: 1000 });
    expect(quick.capabilities.pollIntervalMs).toBe(1000);
    expect(() => createWandbQueueSource({ apiKey: 'k-123456', pollIntervalMs: 0 })).toThrow(/pollIntervalMs must be a positive number/);
  });

  it('registers after a login check: resolves queue names to ids and sends hostname, version and config without secrets', async () => {
    const { server, source } = await setup();
    const reg = await source.register(info(['cpu', 'gpu'], { config: { max_jobs: 2, api_key: 'should-not-leave-1234', builder: { type: 'noop' } } }));
    const agent = server.state.agents.get(reg.id)!;
    expect(reg.name).toBe(agent.name);
    expect(agent.runQueues).toEqual([
      server.state.queueByName('tester', 'model-registry', 'cpu').id,
      server.state.queueByName('tester', 'model-registry', 'gpu').id,
    ]);
    expect(agent).toMatchObject({ hostname: 'host-1', version: 'launch@0.1.0', entity: 'tester', project: 'model-registry' });
    expect(agent.agentConfig).toEqual({ max_jobs: 2, api_key: '[REDACTED]', builder: { type: 'noop' } });
    expect(server.requests.map((r) => r.operation)).toEqual(['Viewer', 'EntityIsTeam', 'ProjectRunQueues', 'createLaunchAgent', 'LaunchAgent']);
  });

  it('names every missing queue, suggests close names and lists the available ones', async () => {
    const { server, source } = await setup();
    const error = await source.register(info(['gpu', 'gpus', 'other'])).catch((e: unknown) => e);
    expect((error as LaunchError).code).toBe('wandb.queue_not_found');
    expect((error as LaunchError).message).toBe(
      '2 requested run queues do not exist in tester/model-registry: queue "gpus" (did you mean "gpu"?), queue "other". Available: gpu, cpu',
    );
    expect(server.state.agents.size).toBe(0);
  });

  it('creates the default queue in an entity that has none, as W&B does', async () => {
    const { server, source } = await setup({ queues: [] });
    await source.register(info(['default']));
    expect(server.state.projectQueues('tester', 'model-registry').map((q) => q.name)).toEqual(['default']);
  });

  it('warns when the entity is a team', async () => {
    const { source, logger } = await setup(
      { users: [{ apiKey: 'team-key-0123456789', username: 'alice', teams: ['ml-team'] }], teams: ['ml-team'], queues: [{ entity: 'ml-team', name: 'gpu' }] },
      { entity: 'ml-team', apiKey: 'team-key-0123456789' },
    );
    await source.register(info(['gpu']));
    expect(logger.lines.some((l) => l.includes('"level":"warn"') && l.includes('team entity ml-team'))).toBe(true);
  });

  it('fails start-up clearly on a wrong key, an unknown entity, or no key at all, never showing the key', async () => {
    const { server } = await setup();
    const secret = 'definitely-wrong-key-0000000000000000000';
    const logger = captureLogger();
    const bad = createWandbQueueSource({ entity: 'tester', apiKey: secret, baseUrl: server.url, logger, ...fast });
    closers.push(() => bad.close!());
    const error = await bad.register(info(['gpu'])).catch((e: unknown) => e);
    expect((error as LaunchError).code).toBe('wandb.login_failed');
    expect((error as LaunchError).message).toBe(`cannot log in to W&B at ${server.url}: the API key from api_key in the agent config was rejected`);
    expect(errorText(error)).not.toContain(secret);
    expect(logger.text()).not.toContain(secret);

    const stranger = createWandbQueueSource({ entity: 'someone-else', apiKey: server.apiKey, baseUrl: server.url, ...fast });
    closers.push(() => stranger.close!());
    await expect(stranger.register(info(['gpu']))).rejects.toThrow('W&B entity someone-else does not exist or this API key has no access to it');

    const home = mkdtempSync(join(tmpdir(), 'home-'));
    expect(() => createWandbQueueSource({ entity: 'tester', env: {}, homedir: home })).toThrow(
      'no W&B API key for https://api.wandb.ai: none in the agent config, WANDB_API_KEY or ~/.netrc',
    );
  });

  it('finds the key in ~/.netrc for the server host', async () => {
    const { server } = await setup();
    const home = mkdtempSync(join(tmpdir(), 'home-'));
    writeFileSync(join(home, '.netrc'), `machine 127.0.0.1\n  login user\n  password ${server.apiKey}\n`);
    const source = createWandbQueueSource({ entity: 'tester', baseUrl: server.url, homedir: home, ...fast });
    closers.push(() => source.close!());
    expect((await source.register(info(['gpu']))).id).toMatch(/\S/);
  });

  it('reports agent status and reads the stopPolling switch', async () => {
    const { server, source } = await setup();
    const { id } = await source.register(info(['gpu']));
    await source.updateAgentStatus(id, 'RUNNING');
    expect(await source.shouldStop!(id)).toBe(false);
    server.state.agents.get(id)!.stopPolling = true;
    expect(await source.shouldStop!(id)).toBe(true);
    await source.updateAgentStatus(id, 'KILLED');
    expect(server.state.agents.get(id)!.statusHistory).toEqual(['POLLING', 'RUNNING', 'KILLED']);
  });

  it('asks whether a run was stopped, in the run entity and project', async () => {
    const { server, source } = await setup();
    await source.register(info(['gpu']));
    const ref = { entity: 'tester', project: 'proj', runId: 'run-9', itemId: 'x', queue: 'gpu' };
    expect(await source.isRunStopped(ref)).toBe(false);
    server.state.setRun('tester', 'proj', 'run-9', { stopped: true });
    expect(await source.isRunStopped(ref)).toBe(true);
    expect(await source.isRunStopped({ ...ref, entity: null })).toBe(true);
    expect(await source.isRunStopped({ ...ref, project: null })).toBe(false);
  });

  it('hands out a runSpec that is not an object untouched, so the agent fails it with stage agent', async () => {
    const { server, source } = await setup();
    const { id } = await source.register(info(['gpu']));
    const item = server.state.push(server.state.userForKey(server.apiKey)!, { entity: 'tester', project: 'model-registry', queue: 'gpu', runSpec: {} });
    item.runSpec = 'not a spec' as unknown as Record<string, unknown>;
    const popped = await source.pop('gpu', id);
    expect(popped).toEqual({ id: item.id, queue: 'gpu', spec: 'not a spec' });
  });

  it('requeues with the item priority on the same queue (preemption)', async () => {
    const { server, source } = await setup();
    const { id } = await source.register(info(['gpu']));
    const newId = await source.requeue({ id: 'old', queue: 'gpu', spec: {}, priority: 'high' }, { run_id: 'r1', _resume_count: 1 });
    const item = server.state.items.get(newId)!;
    expect(item.priority).toBe(PRIORITY_VALUE.high);
    // The push id lets the client tell after a lost answer whether the push took effect.
    expect(item.runSpec).toEqual({ run_id: 'r1', _resume_count: 1, _launch_push_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect((await source.pop('gpu', id))?.id).toBe(newId);
  });
});
