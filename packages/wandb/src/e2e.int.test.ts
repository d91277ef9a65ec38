import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgent, type Agent, type AgentEvents } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners';
import { createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createWandbEnqueueClient, type WandbEnqueueClient } from './enqueue.js';
import { createWandbQueueSource } from './source.js';
import { captureLogger, errorText } from './test-support/capture-logger.js';

/**
 * End to end through real HTTP: the enqueue client pushes to the W&B test server, a real agent
 * (createAgent + the local-process runner + the W&B source) pops, acks and runs real processes.
 */
const ENTITY = 'tester';
const QUEUE = 'local';
const fast = { retry: { baseDelayMs: 20, maxDelayMs: 100 }, env: {} };
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

interface Rig {
  server: WandbTestServer;
  enqueuer: WandbEnqueueClient;
  dir: string;
  logs: ReturnType<typeof captureLogger>;
  startAgent(apiKey?: string): Promise<{ agent: Agent; events: Array<{ event: string; payload: unknown }> }>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function rig(serverOptions: Parameters<typeof createWandbTestServer>[0] = {}): Promise<Rig> {
  const server = await createWandbTestServer({ queues: [{ entity: ENTITY, name: QUEUE }], ...serverOptions });
  cleanups.push(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'wandb-e2e-'));
  const logs = captureLogger();
  const enqueuer = createWandbEnqueueClient({ entity: ENTITY, apiKey: server.apiKey, baseUrl: server.url, ...fast });
  cleanups.push(() => enqueuer.close());
  return {
    server,
    enqueuer,
    dir,
    logs,
    async startAgent(apiKey = server.apiKey) {
      const source = createWandbQueueSource({ entity: ENTITY, apiKey, baseUrl: server.url, pollIntervalMs: 200, logger: logs, ...fast });
      const runner = createLocalProcessRunner({ logDir: join(dir, 'logs'), killGracePeriodMs: 1000, logger: logs });
      const agent = createAgent({
        source,
        queues: [QUEUE],
        runners: [runner],
        entity: ENTITY,
        apiKey,
        baseUrl: server.url,
        monitorIntervalMs: 100,
        filesDir: join(dir, 'files'),
        logger: logs,
        version: 'launch@e2e',
        config: { api_key: apiKey },
        env: { PATH: process.env.PATH },
      });
      const events: Array<{ event: string; payload: unknown }> = [];
      for (const event of ['item:claimed', 'run:submitted', 'item:finished', 'item:failed', 'agent:stopped', 'agent:status'] as const) {
        agent.on(event, (payload: AgentEvents[typeof event]) => events.push({ event, payload }));
      }
      cleanups.push(async () => {
        await agent.stop('test over');
        await runner.close();
        await source.close!();
      });
      await agent.start();
      return { agent, events };
    },
  };
}

const shellJob = (script: string, extra: Record<string, unknown> = {}) => ({
  entity: ENTITY,
  project: 'e2e',
  resource: 'local-process',
  overrides: { entry_point: ['sh', '-c', script] },
  ...extra,
});

function expectKeyNowhere(r: Rig, ...texts: string[]): void {
  for (const text of [r.logs.text(), ...texts]) expect(text).not.toContain(r.server.apiKey);
}

describe('W&B end to end (enqueue client → test server → agent → local process)', () => {
  it('runs an enqueued job once: pop, ack with the run id, run, finish', async () => {
    const r = await rig();
    const out = join(r.dir, 'out.txt');
    const release = join(r.dir, 'release');
    const { agent } = await r.startAgent();
    // The job holds until the test has seen the agent report RUNNING, then lets it end.
    const script = `echo "ran $WANDB_RUN_ID in $WANDB_LAUNCH_QUEUE_NAME" >> ${out}; while [ ! -f ${release} ]; do sleep 0.05; done`;
    const { id } = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob(script), priority: 'high' });
    const item = await r.server.waitFor(
      () => {
        const i = r.server.state.items.get(id);
        return i?.state === 'CLAIMED' && existsSync(out) ? i : undefined;
      },
      20_000,
      'the job to run',
    );
    const agentRecord = [...r.server.state.agents.values()][0]!;
    await r.server.waitFor(() => agentRecord.agentStatus === 'RUNNING', 10_000, 'the agent to report RUNNING');
    writeFileSync(release, '');
    await r.server.waitFor(() => agent.snapshot().running.length === 0, 20_000, 'the job to end');
    expect(item.priority).toBe(1);
    expect(item.pops).toBe(1);
    expect(readFileSync(out, 'utf8')).toBe(`ran ${item.runName} in ${QUEUE}\n`);
    // W&B reserves the run under the spec's entity/project when the item is acknowledged.
    expect(r.server.state.run(ENTITY, 'e2e', item.runName!)).toBeDefined();
    expect(agentRecord.agentConfig).toEqual({ api_key: '[REDACTED]' });
    await r.server.waitFor(() => agentRecord.agentStatus === 'POLLING', 10_000, 'the agent to go back to POLLING');
    expectKeyNowhere(r);
  });

  it('reports a failing job with stage run and its message', async () => {
    const r = await rig();
    await r.startAgent();
    const { id } = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob('echo "disk full on /data" >&2; exit 3') });
    const item = await r.server.waitFor(
      () => {
        const i = r.server.state.items.get(id);
        return i?.state === 'FAILED' ? i : undefined;
      },
      20_000,
      'the item to fail',
    );
    expect(item.failure!.stage).toBe('run');
    expect(item.failure!.message).toContain('exit code 3');
    expect(item.failure!.message).toContain('disk full on /data');
    expect(item.failure!.filePaths).toHaveLength(1);
    expect(readFileSync(item.failure!.filePaths[0]!, 'utf8')).toContain('exit code 3');
    expectKeyNowhere(r, item.failure!.message!);
  });

  it('reports a bad spec with stage agent, naming the field', async () => {
    const r = await rig();
    await r.startAgent();
    const pushed = await r.enqueuer.client.pushToRunQueueByName({
      entity: ENTITY,
      project: 'model-registry',
      queue: QUEUE,
      runSpec: shellJob('true', { run_id: 'not a valid id!' }),
    });
    const item = await r.server.waitFor(
      () => {
        const i = r.server.state.items.get(pushed.id);
        return i?.state === 'FAILED' ? i : undefined;
      },
      20_000,
      'the bad item to fail',
    );
    expect(item.failure!.stage).toBe('agent');
    expect(item.failure!.message).toContain('run_id');
    expect(item.runName).toBeUndefined(); // never acknowledged
  });

  it('stops with status KILLED when stopPolling is switched on', async () => {
    const r = await rig();
    const { agent, events } = await r.startAgent();
    const record = await r.server.waitFor(() => [...r.server.state.agents.values()][0], 5000, 'the agent to register');
    record.stopPolling = true;
    await agent.stopped;
    expect(record.agentStatus).toBe('KILLED');
    expect(events.some((e) => e.event === 'agent:stopped')).toBe(true);
  });

  it('fails start-up on a wrong key with a clear message that does not contain the key', async () => {
    const r = await rig();
    const wrong = 'wrong-key-ffffffffffffffffffffffffffffffff';
    const error = await r.startAgent(wrong).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`cannot log in to W&B at ${r.server.url}: the API key from api_key in the agent config was rejected`);
    expect(errorText(error)).not.toContain(wrong);
    expect(r.logs.text()).not.toContain(wrong);
    expect(r.server.state.agents.size).toBe(0);
  });

  it('retries 429 and 5xx faults and still runs the job exactly once', async () => {
    const r = await rig();
    const out = join(r.dir, 'once.txt');
    const { id } = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob(`echo started >> ${out}`) });
    r.server.faults.add({ status: 429, retryAfterSeconds: 0, times: 2 });
    r.server.faults.add({ status: 503, operation: 'popFromRunQueue', times: 2 });
    r.server.faults.add({ status: 500, operation: 'ackRunQueueItem', times: 2 });
    r.server.faults.add({ status: 502, operation: 'updateLaunchAgent' });
    const { agent } = await r.startAgent();
    await r.server.waitFor(() => r.server.state.items.get(id)?.state === 'CLAIMED' && existsSync(out), 20_000, 'the job to run');
    await r.server.waitFor(() => agent.snapshot().running.length === 0, 20_000, 'the job to end');
    expect(r.server.faults.pending()).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('started\n');
    expect(r.server.state.items.get(id)!.pops).toBe(1);
    expect(r.server.requests.filter((q) => q.fault !== undefined).length).toBe(7);
    expectKeyNowhere(r);
  });

  it('loses the answers to a push, a pop and an ack after W&B acted, and still has one item per enqueue and one run per item', async () => {
    const r = await rig();
    const out = join(r.dir, 'lost.txt');
    r.server.faults.add({ status: 'lost-reply', operation: 'pushToRunQueueByName' });
    const first = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob(`echo a >> ${out}`) });
    const second = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob(`echo b >> ${out}`) });
    expect(r.server.itemsOf(ENTITY, QUEUE).map((i) => i.id)).toEqual([first.id, second.id]);
    r.server.faults.add({ status: 'lost-reply', operation: 'popFromRunQueue' });
    r.server.faults.add({ status: 'lost-reply', operation: 'ackRunQueueItem' });
    const { agent } = await r.startAgent();
    const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).sort() : []);
    await r.server.waitFor(
      () =>
        [first.id, second.id].every((id) => r.server.state.items.get(id)?.state === 'CLAIMED') && lines().length >= 2 && agent.snapshot().running.length === 0,
      20_000,
      'both jobs to run and end',
    );
    expect(lines()).toEqual(['a', 'b']);
    expect(r.server.faults.pending()).toBe(0);
    expect(r.server.itemsOf(ENTITY, QUEUE).map((i) => i.pops)).toEqual([1, 1]);
    expect(r.server.state.runs.size).toBe(2);
    // The client recovered the lost pop and the lost ack by reading the queue back.
    expect(r.logs.text()).toContain('the answer to popFromRunQueue was lost; recovered item');
    expect(r.logs.text()).toContain('counted as acknowledged');
    expectKeyNowhere(r);
  });

  it('keeps polling when calls fail even after retries, and runs the job once the API recovers', async () => {
    const r = await rig();
    const out = join(r.dir, 'survived.txt');
    const { agent } = await r.startAgent();
    // More faults than one call's attempts (7): a pop and a stop check fail for good. (A pop is
    // retried only on answers that say W&B did not act, such as 503; see policy.ts.)
    r.server.faults.add({ status: 503, operation: 'popFromRunQueue', times: 10 });
    r.server.faults.add({ status: 'reset', operation: 'LaunchAgent', times: 7 });
    const { id } = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob(`echo ok >> ${out}`) });
    await r.server.waitFor(() => r.server.state.items.get(id)?.state === 'CLAIMED' && existsSync(out), 30_000, 'the job to run after the faults');
    await r.server.waitFor(() => r.server.faults.pending() === 0, 10_000, 'the failing stop check');
    await r.server.waitFor(
      () => r.logs.lines.some((l) => l.includes(`cannot reach W&B at ${r.server.url} during LaunchAgent`)),
      10_000,
      'the failed stop check to be logged',
    );
    expect(agent.snapshot().status).not.toBe('STOPPED');
    expect(r.logs.lines.some((l) => l.includes('W&B API popFromRunQueue failed with HTTP 503 after retries'))).toBe(true);
    expectKeyNowhere(r);
  });

  it('runs an item on the next agent when the one that popped it was killed before acking', async () => {
    const r = await rig({ leaseTimeoutMs: 1500 });
    const out = join(r.dir, 'recovered.txt');
    const { id } = await r.enqueuer.enqueue({ queue: QUEUE, spec: shellJob(`echo recovered >> ${out}`) });
    const doomed = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'packages/wandb/src/test-support/pop-and-hang.ts'), r.server.url, r.server.apiKey, ENTITY, QUEUE],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(async () => void doomed.kill('SIGKILL'));
    let stdout = '';
    doomed.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    await r.server.waitFor(() => stdout.includes('popped'), 20_000, 'the doomed agent to pop');
    expect(r.server.state.items.get(id)?.state).toBe('LEASED');
    doomed.kill('SIGKILL');
    await once(doomed, 'exit');
    expect(stdout).toBe(`popped ${id}\n`);

    await r.startAgent();
    const item = await r.server.waitFor(
      () => {
        const i = r.server.state.items.get(id);
        return i?.state === 'CLAIMED' && existsSync(out) ? i : undefined;
      },
      20_000,
      'the next agent to run the item',
    );
    expect(item.pops).toBe(2);
    expect(readFileSync(out, 'utf8')).toBe('recovered\n');
  });
});
